// WaveGAN's generator in the browser: reads manifest.json and weights.bin, or the same as the
// scripts manifest.js and weights.js (written by wavegan_tf.web_export), and computes G layer
// by layer with TensorFlow.js ops, as Keras does. Exposes window.WaveGANRuntime.load(baseUrl)
// and .loadFromScripts(baseUrl) -> Promise<Generator>.
(function (global) {
  'use strict';
  const tf = global.tf;

  function activation(x, name) {
    switch (name || 'linear') {
      case 'linear': return x;
      case 'relu': return tf.relu(x);
      case 'tanh': return tf.tanh(x);
      case 'sigmoid': return tf.sigmoid(x);
      default: throw new Error('unsupported activation ' + name);
    }
  }

  function single(value, what) {
    const v = Array.isArray(value) ? value : [value];
    if (v.length !== 1) throw new Error(what + ' must be one number, got ' + JSON.stringify(value));
    return v[0];
  }

  function checkConv(layer) {
    const c = layer.config;
    if (single(c.dilation_rate, 'dilation_rate') !== 1) throw new Error(layer.name + ': dilation is not supported');
    if (c.groups !== undefined && c.groups !== 1) throw new Error(layer.name + ': grouped convolution is not supported');
    if (c.output_padding !== undefined && c.output_padding !== null) throw new Error(layer.name + ': output_padding is not supported');
    if (c.padding !== 'same' && c.padding !== 'valid') throw new Error(layer.name + ': padding ' + c.padding + ' is not supported');
  }

  // One function per Keras layer class: (layer, weights, inputs) -> output tensor.
  const LAYERS = {
    Embedding: (layer, w, [labels]) => tf.gather(w.embeddings, labels),
    Concatenate: (layer, w, inputs) => tf.concat(inputs, layer.config.axis),
    Dense: (layer, w, [x]) => {
      let y = tf.matMul(x, w.kernel);
      if (layer.config.use_bias) y = tf.add(y, w.bias);
      return activation(y, layer.config.activation);
    },
    Reshape: (layer, w, [x]) => tf.reshape(x, [-1].concat(layer.config.target_shape)),
    ReLU: (layer, w, [x]) => tf.relu(x),
    Activation: (layer, w, [x]) => activation(x, layer.config.activation),
    Conv1D: (layer, w, [x]) => {
      const c = layer.config;
      let y = tf.conv1d(x, w.kernel, single(c.strides, 'strides'), c.padding);
      if (c.use_bias) y = tf.add(y, w.bias);
      return activation(y, c.activation);
    },
    // Keras kernel [k, out, in]; a height-1 conv2dTranspose with filter [1, k, out, in].
    Conv1DTranspose: (layer, w, [x]) => {
      const c = layer.config;
      const [batch, length, channels] = x.shape;
      const k = single(c.kernel_size, 'kernel_size');
      const stride = single(c.strides, 'strides');
      const outLength = c.padding === 'same' ? length * stride : (length - 1) * stride + Math.max(k, stride);
      const filter = tf.reshape(w.kernel, [1, k, c.filters, channels]);
      let y = tf.conv2dTranspose(tf.expandDims(x, 1), filter, [batch, 1, outLength, c.filters],
                                 [1, stride], c.padding);
      y = tf.squeeze(y, [1]);
      if (c.use_bias) y = tf.add(y, w.bias);
      return activation(y, c.activation);
    },
    UpSampling1D: (layer, w, [x]) => {
      const [batch, length, channels] = x.shape;
      const size = layer.config.size;
      return tf.reshape(tf.tile(tf.expandDims(x, 2), [1, 1, size, 1]), [batch, length * size, channels]);
    },
    BatchNormalization: (layer, w, [x]) => {
      const c = layer.config;
      if (c.axis !== -1 && !(Array.isArray(c.axis) && c.axis.length === 1 && c.axis[0] === x.rank - 1)) {
        throw new Error(layer.name + ': batch norm over axis ' + JSON.stringify(c.axis) + ' is not supported');
      }
      return tf.batchNorm(x, w.moving_mean, w.moving_variance, c.center ? w.beta : undefined,
                          c.scale ? w.gamma : undefined, c.epsilon);
    },
  };

  function checkLayer(layer) {
    if (layer.class_name === 'InputLayer') return;
    if (!LAYERS[layer.class_name]) throw new Error('layer ' + layer.name + ' (' + layer.class_name + ') is not supported');
    if (layer.class_name === 'ReLU') {
      const c = layer.config;
      if ((c.max_value !== null && c.max_value !== undefined) || c.negative_slope || c.threshold) {
        throw new Error(layer.name + ': only a plain ReLU is supported');
      }
    }
    if (layer.class_name === 'Conv1D' || layer.class_name === 'Conv1DTranspose') checkConv(layer);
  }

  class Generator {
    constructor(manifest, weights) {
      this.manifest = manifest;
      this.weights = weights;
      manifest.layers.forEach(checkLayer);
    }

    get conditional() { return Array.isArray(this.manifest.class_names); }

    // z: n rows of latent_dim numbers; labels: n class indices (conditional models only).
    // Returns {audio: Float32Array [n * slice_len * num_channels], milliseconds}.
    async generate(zRows, labels) {
      const m = this.manifest;
      const n = zRows.length;
      zRows.forEach((row, i) => {
        if (row.length !== m.latent_dim) throw new Error('z row ' + i + ' has ' + row.length + ' values, expected latent_dim=' + m.latent_dim);
      });
      if (this.conditional) {
        if (!labels || labels.length !== n) throw new Error('a conditional model needs one label per z row');
        labels.forEach((l) => {
          if (!(Number.isInteger(l) && l >= 0 && l < m.class_names.length)) throw new Error('label ' + l + ' is not a class index in [0, ' + m.class_names.length + ')');
        });
      }
      const start = performance.now();
      const output = tf.tidy(() => {
        const values = {};
        const feeds = {z: tf.tensor2d(zRows.map((r) => Array.from(r)), [n, m.latent_dim], 'float32')};
        if (this.conditional) feeds.label = tf.tensor1d(labels, 'int32');
        for (const layer of m.layers) {
          if (layer.class_name === 'InputLayer') {
            values[layer.name] = feeds[layer.name];
            continue;
          }
          const inputs = layer.inbound.map((name) => values[name]);
          values[layer.name] = LAYERS[layer.class_name](layer, this.weights[layer.name], inputs);
        }
        // As the SavedModel's serving function: audio clipped to [-1, 1].
        return tf.clipByValue(values[m.output], -1, 1);
      });
      const audio = await output.data();
      output.dispose();
      return {audio: audio, milliseconds: performance.now() - start};
    }
  }

  async function fetchOk(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error('cannot load ' + url + ': HTTP ' + response.status);
    return response;
  }

  const isCount = (v) => Number.isSafeInteger(v) && v >= 0;
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

  // Throws an Error saying what is wrong with the manifest (before anything is allocated from
  // its sizes); byteLength: the size of its weights file, or null before it is known.
  function checkManifest(m, byteLength) {
    if (!isObject(m)) throw new Error('it is not a JSON object');
    for (const key of ['latent_dim', 'slice_len', 'num_channels', 'sample_rate']) {
      if (!isCount(m[key]) || m[key] < 1) throw new Error(key + ' must be a positive integer, got ' + JSON.stringify(m[key]));
    }
    if (typeof m.weights_file !== 'string' || !/^[\w.-]+$/.test(m.weights_file)) throw new Error('weights_file must name a file beside it, got ' + JSON.stringify(m.weights_file));
    if (m.class_names !== null && m.class_names !== undefined &&
        !(Array.isArray(m.class_names) && m.class_names.length >= 2 && m.class_names.every((c) => typeof c === 'string'))) {
      throw new Error('class_names must be null or a list of at least 2 names');
    }
    if (!Array.isArray(m.layers) || m.layers.length === 0) throw new Error('layers must be a non-empty list');
    const seen = new Set();
    for (const layer of m.layers) {
      if (!isObject(layer) || typeof layer.name !== 'string' || typeof layer.class_name !== 'string') throw new Error('every layer needs a name and a class_name');
      if (seen.has(layer.name)) throw new Error('layer ' + layer.name + ' appears twice');
      if (!isObject(layer.config)) throw new Error('layer ' + layer.name + ' has no config');
      if (!Array.isArray(layer.weights)) throw new Error('layer ' + layer.name + ' has no weights list');
      if (layer.class_name !== 'InputLayer') {
        if (!Array.isArray(layer.inbound) || layer.inbound.length === 0 || !layer.inbound.every((n) => seen.has(n))) {
          throw new Error('layer ' + layer.name + ' takes inputs that are not earlier layers: ' + JSON.stringify(layer.inbound));
        }
      }
      for (const w of layer.weights) {
        if (!isObject(w) || typeof w.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every(isCount) || !isCount(w.offset) || w.offset % 4 !== 0) {
          throw new Error('weight ' + JSON.stringify(w && w.name) + ' of layer ' + layer.name + ' needs a name, a shape of counts and an offset that is a multiple of 4');
        }
        const size = w.shape.reduce((a, b) => a * b, 1);
        if (!Number.isSafeInteger(size) || (byteLength !== null && w.offset + 4 * size > byteLength)) {
          throw new Error('weight ' + w.name + ' of layer ' + layer.name + ' (offset ' + w.offset + ', shape ' + JSON.stringify(w.shape) + ') runs past the end of ' + m.weights_file + (byteLength !== null ? ' (' + byteLength + ' bytes)' : ''));
        }
      }
      seen.add(layer.name);
    }
    if (!seen.has(m.output)) throw new Error('output ' + JSON.stringify(m.output) + ' is not one of its layers');
  }

  // Over HTTP: fetches manifest.json and the weights file it names.
  async function load(base) {
    const manifestUrl = base + 'manifest.json';
    let manifest;
    try {
      manifest = await (await fetchOk(manifestUrl)).json();
      checkManifest(manifest, null);
    } catch (err) { fail(manifestUrl, err); }
    const buffer = await (await fetchOk(base + manifest.weights_file)).arrayBuffer();
    return build(manifest, buffer, manifestUrl, manifest.weights_file);
  }

  // From disk (file://), where fetch is refused: manifest.js and weights.js, loaded as scripts,
  // assign window.WAVEGAN_MANIFEST and window.WAVEGAN_WEIGHTS (the weights in base64).
  async function loadFromScripts(base) {
    const manifestUrl = base + 'manifest.js';
    let manifest;
    try {
      await addScript(manifestUrl);
      manifest = global.WAVEGAN_MANIFEST;
      checkManifest(manifest, null);
    } catch (err) { fail(manifestUrl, err); }
    const weightsUrl = base + 'weights.js';
    let buffer;
    try {
      await addScript(weightsUrl);
      buffer = decodeBase64(global.WAVEGAN_WEIGHTS);
    } catch (err) { fail(weightsUrl, err); }
    return build(manifest, buffer, manifestUrl, 'weights.js');
  }

  function fail(url, err) { throw new Error(url + ': ' + (err && err.message || err)); }

  // Resolves once the script at url has run; rejects when it cannot be read.
  function addScript(url) {
    return new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = url;
      script.onload = () => resolve();
      script.onerror = () => reject(new Error('cannot load ' + url));
      document.head.append(script);
    });
  }

  function decodeBase64(text) {
    if (typeof text !== 'string') throw new Error('it does not set window.WAVEGAN_WEIGHTS to a base64 string');
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  // The Generator of a checked manifest and its weights (an ArrayBuffer read from weightsName).
  function build(manifest, buffer, manifestUrl, weightsName) {
    try {
      checkManifest(manifest, buffer.byteLength);
    } catch (err) { fail(manifestUrl, new Error((err.message) + ' (does it belong to this ' + weightsName + '?)')); }
    const weights = {};
    try {
      for (const layer of manifest.layers) {
        weights[layer.name] = {};
        for (const w of layer.weights) {
          const size = w.shape.reduce((a, b) => a * b, 1);
          weights[layer.name][w.name] = tf.tensor(new Float32Array(buffer, w.offset, size), w.shape, 'float32');
        }
      }
      return new Generator(manifest, weights);
    } catch (err) { fail(manifestUrl, err); }
  }

  global.WaveGANRuntime = {load: load, loadFromScripts: loadFromScripts, Generator: Generator, checkManifest: checkManifest};
})(window);
