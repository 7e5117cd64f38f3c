"""Safe files: atomic writes of files and folders, run locks, JSON read with clear errors, output
folders checked to be writable."""
