"""Build the offline spoken-digit dataset (an SC09 stand-in) with espeak-ng.

    python data/make_spoken_digits.py --out data/spoken_digits

Needs espeak-ng (Debian/Ubuntu: sudo apt-get install espeak-ng). See data/README.md.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wavegan_tf.audio.spoken_digits import DEFAULT_VOICES, make_spoken_digits  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "spoken_digits"),
                        help="output folder (default: data/spoken_digits)")
    parser.add_argument("--voices", default=",".join(DEFAULT_VOICES),
                        help="comma-separated espeak-ng voices, e.g. en-us+m1,en-gb+f2")
    parser.add_argument("--takes", type=int, default=3, help="renditions per voice and digit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        out = make_spoken_digits(args.out, voices=args.voices.split(","), takes=args.takes,
                                 seed=args.seed)
    except (FileNotFoundError, ValueError) as error:
        parser.exit(1, f"error: {error}\n")
    print(f"spoken digits ready in {out}")


if __name__ == "__main__":
    main()
