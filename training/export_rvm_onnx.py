"""Convert the vendored Robust Video Matting prior (a TF.js graph model: models/prior/rvm.json + rvm.bin)
to ONNX, so that Node runs it on ONNX Runtime's native kernels instead of TF.js's WebAssembly backend.

    apt-get install -y python3-onnx          # Debian's onnx 1.12 (protobuf writer and checker)
    /usr/bin/python3 training/export_rvm_onnx.py models/prior/rvm.json models/prior/rvm.onnx

Why a converter of our own: tf2onnx needs TensorFlow, which neither apt nor npm offers here, and the
vendored file is the only copy of these weights we have (no PyTorch checkpoint to export from). The
graph uses ~40 TensorFlow op types; each is written below as the ONNX op(s) with the same meaning.

What the ONNX model is:
- inputs `src` (1,H,W,3) NHWC float in [0,1] and the recurrent states `r1i`..`r4i` (NHWC; (1,1,1,1)
  zeros on a video's first frame, broadcast by the model as in the original);
- outputs `pha` (1,H,W,1) and `r1o`..`r4o`;
- the downsample ratio is fixed at 0.5, the one value cleanplate uses (src/prior/models.ts): the
  graph's two `cond` branches on it (resize or not, guided-filter refiner or not) are decided here;
- the TF.js file's uint8-quantised weights stay uint8 in the file (value = q * scale + min, as TF.js
  decodes them); the Cast/Mul/Add that decode them are folded once when ONNX Runtime loads the model;
- the dilated depthwise convolutions that TensorFlow wrote as SpaceToBatchND → conv → BatchToSpaceND
  are written back as one convolution with that dilation (the same sums, without the reshuffles);
- TensorFlow's NHWC layout is kept between convolutions; ONNX Runtime's transpose optimiser removes
  the Transpose pairs written around each NCHW convolution where they cancel.
Parity with TF.js is checked by test/prior-onnx.test.ts (same frames through both).
"""
import base64
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RATIO = 0.5
OPSET = 17
INT64_MAX = np.iinfo(np.int64).max
DTYPES = {'DT_FLOAT': np.float32, 'DT_INT32': np.int32, 'DT_BOOL': np.bool_}
DEAD = object()


def b64(s):
    return base64.b64decode(s).decode()


def load_weights(meta, bin_bytes):
    """TF.js weight decoding (tfjs-core io/io_utils decodeWeights) for the dtypes this file uses."""
    out, off = {}, 0
    for group in meta['weightsManifest']:
        for w in group['weights']:
            shape = [int(s) for s in w['shape']]
            n = int(np.prod(shape)) if shape else 1
            q = w.get('quantization')
            if q:
                assert q['dtype'] == 'uint8', q
                raw = np.frombuffer(bin_bytes, np.uint8, n, off).reshape(shape)
                off += n
                out[w['name']] = ('q', raw, float(q['scale']), float(q['min']))
            else:
                dt = {'float32': np.float32, 'int32': np.int32, 'bool': np.bool_}[w['dtype']]
                size = n * np.dtype(dt).itemsize
                out[w['name']] = ('v', np.frombuffer(bin_bytes, dt, n, off).reshape(shape).copy())
                off += size
    assert off == len(bin_bytes), (off, len(bin_bytes))
    return out


def dequant(entry):
    if entry[0] == 'v':
        return entry[1]
    _, q, scale, mn = entry
    return (q.astype(np.float64) * scale + mn).astype(np.float32)


class Converter:
    def __init__(self, meta, weights):
        self.nodes = {n['name']: n for n in meta['modelTopology']['node']}
        self.weights = weights
        self.values = {}      # TF ref -> ('c', numpy) | ('t', onnx name) | DEAD
        self.onnx_nodes = []
        self.inits = []
        self.count = 0

    # --- helpers -----------------------------------------------------------------------------
    def fresh(self, hint):
        self.count += 1
        return f'{hint.split("/")[-1]}_{self.count}'

    def op(self, op_type, inputs, hint, n_out=1, **attrs):
        outs = [self.fresh(hint) for _ in range(n_out)]
        self.onnx_nodes.append(helper.make_node(op_type, inputs, outs, name=outs[0], **attrs))
        return outs if n_out > 1 else outs[0]

    def const(self, arr, hint):
        name = self.fresh(hint + '_c')
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def tensor(self, v, hint='x'):
        """An ONNX value name for a converted value (constants become initializers)."""
        kind, x = v
        if kind == 't':
            return x
        return self.const(x, hint)

    def filter(self, ref, transpose, reshape):
        """A convolution's filter (or bias) in ONNX's layout: kept uint8 where the file has it so,
        decoded by Cast/Mul/Add that ONNX Runtime folds at load time; other values as floats."""
        name = ref.split(':')[0]
        entry = self.weights.get(name)
        quantised = entry is not None and entry[0] == 'q'
        arr = entry[1] if quantised else self.value(ref)[1].astype(np.float32)
        if transpose is not None:
            arr = arr.transpose(transpose)
        if reshape is not None:
            arr = arr.reshape(reshape)
        if not quantised:
            return self.const(np.ascontiguousarray(arr), name)
        _, _, scale, mn = entry
        f = self.op('Cast', [self.const(np.ascontiguousarray(arr), name + '_q')], name, to=TensorProto.FLOAT)
        f = self.op('Mul', [f, self.const(np.float32(scale), 'scale')], name)
        return self.op('Add', [f, self.const(np.float32(mn), 'min')], name)

    def is_const(self, v):
        return v is not DEAD and v[0] == 'c'

    # --- evaluation ----------------------------------------------------------------------------
    def value(self, ref):
        ref = ref.lstrip('^')
        name, _, idx = ref.partition(':')
        key = f'{name}:{idx or 0}'
        if key not in self.values:
            self.convert(self.nodes[name])
        return self.values[key]

    def set(self, node, *vals):
        for i, v in enumerate(vals):
            self.values[f'{node["name"]}:{i}'] = v

    def convert(self, node):
        ins = [i for i in node.get('input', []) if not i.startswith('^')]
        controls = [i for i in node.get('input', []) if i.startswith('^')]
        op = node['op']
        if op == 'Merge':
            live = [v for v in (self.value(i) for i in ins) if v is not DEAD]
            assert len(live) == 1, node['name']
            return self.set(node, live[0], ('c', np.int32(0)))
        vals = [self.value(i) for i in ins]
        if any(v is DEAD for v in vals) or any(self.value(c) is DEAD for c in controls):
            return self.set(node, DEAD, DEAD)
        a = node.get('attr', {})
        fn = getattr(self, 'op_' + op.lstrip('_'), None)
        if fn is None:
            raise NotImplementedError(op)
        out = fn(node, vals, a)
        self.set(node, *(out if isinstance(out, list) else [out]))

    # --- ops -----------------------------------------------------------------------------------
    def op_Const(self, node, vals, a):
        name = node['name']
        if name in self.weights:
            entry = self.weights[name]
            # Convolutions read their filters from the file again (filter: kept uint8).
            return ('c', dequant(entry))
        t = a['value']['tensor']
        dt = DTYPES[t['dtype']]
        shape = [int(d['size']) for d in t.get('tensorShape', {}).get('dim', [])]
        field = {np.float32: 'floatVal', np.int32: 'intVal', np.bool_: 'boolVal'}[dt]
        vs = t.get(field, [])
        arr = np.array(vs, dt) if vs else np.zeros(shape, dt)
        if arr.size == 1 and shape:
            arr = np.full(shape, arr.reshape(-1)[0], dt)
        return ('c', arr.reshape(shape))

    def op_Placeholder(self, node, vals, a):
        if node['name'] == 'downsample_ratio':
            return ('c', np.float32(RATIO))
        return ('t', node['name'])

    def op_Identity(self, node, vals, a):
        return vals[0]

    def op_NoOp(self, node, vals, a):
        return ('c', np.int32(0))

    def op_Switch(self, node, vals, a):
        data, pred = vals
        assert self.is_const(pred), node['name']
        return [DEAD, data] if bool(pred[1]) else [data, DEAD]

    def folded(self, fn, vals):
        if all(self.is_const(v) for v in vals):
            return ('c', fn(*[v[1] for v in vals]))
        return None

    def binary(self, onnx_op, np_fn):
        def run(node, vals, a):
            c = self.folded(np_fn, vals)
            if c is not None:
                return c
            return ('t', self.op(onnx_op, [self.tensor(v) for v in vals], node['name']))
        return run

    def __getattr__(self, name):
        table = {
            'op_Mul': ('Mul', lambda x, y: (x * y).astype(np.result_type(x, y))),
            'op_AddV2': ('Add', lambda x, y: x + y),
            'op_Add': ('Add', lambda x, y: x + y),
            'op_Sub': ('Sub', lambda x, y: x - y),
            'op_RealDiv': ('Div', lambda x, y: x / y),
            'op_Minimum': ('Min', np.minimum),
            'op_Maximum': ('Max', np.maximum),
            'op_FloorMod': ('Mod', np.mod),
            'op_Equal': ('Equal', np.equal),
        }
        if name in table:
            return self.binary(*table[name])
        raise AttributeError(name)

    def unary(self, node, vals, onnx_op, np_fn, **attrs):
        c = self.folded(np_fn, vals)
        if c is not None:
            return c
        return ('t', self.op(onnx_op, [self.tensor(vals[0])], node['name'], **attrs))

    def op_Sigmoid(self, node, vals, a):
        return self.unary(node, vals, 'Sigmoid', lambda x: 1 / (1 + np.exp(-x)))

    def op_Tanh(self, node, vals, a):
        return self.unary(node, vals, 'Tanh', np.tanh)

    def op_Square(self, node, vals, a):
        x = self.tensor(vals[0])
        return ('t', self.op('Mul', [x, x], node['name']))

    def op_Relu6(self, node, vals, a):
        x = self.tensor(vals[0])
        return ('t', self.op('Clip', [x, self.const(np.float32(0), 'lo'), self.const(np.float32(6), 'hi')], node['name']))

    def op_Squeeze(self, node, vals, a):
        dims = [int(d) for d in a.get('squeeze_dims', {}).get('list', {}).get('i', [])]
        assert self.is_const(vals[0])
        x = vals[0][1]
        return ('c', np.squeeze(x, axis=tuple(dims)) if dims else np.squeeze(x))

    def op_Cast(self, node, vals, a):
        dt = DTYPES[a['DstT']['type']]
        c = self.folded(lambda x: x.astype(dt), vals)
        if c is not None:
            return c
        to = {np.float32: TensorProto.FLOAT, np.int32: TensorProto.INT32}[dt]
        return ('t', self.op('Cast', [self.tensor(vals[0])], node['name'], to=to))

    def op_Shape(self, node, vals, a):
        s = self.op('Shape', [self.tensor(vals[0])], node['name'])
        return ('t', self.op('Cast', [s], node['name'], to=TensorProto.INT32))

    def op_StridedSlice(self, node, vals, a):
        x, b, e, s = vals
        assert all(self.is_const(v) for v in (b, e, s)), node['name']
        masks = {k: int(a[k]['i']) for k in ('begin_mask', 'end_mask', 'shrink_axis_mask', 'new_axis_mask', 'ellipsis_mask')}
        assert masks['new_axis_mask'] == 0 and masks['ellipsis_mask'] == 0
        begin, end, stride = b[1].tolist(), e[1].tolist(), s[1].tolist()
        starts, ends, axes, steps, squeeze = [], [], [], [], []
        for i in range(len(begin)):
            if masks['shrink_axis_mask'] >> i & 1:
                starts.append(begin[i]); ends.append(begin[i] + 1 if begin[i] != -1 else INT64_MAX)
                squeeze.append(i)
            else:
                starts.append(0 if masks['begin_mask'] >> i & 1 else begin[i])
                ends.append(INT64_MAX if masks['end_mask'] >> i & 1 else end[i])
            axes.append(i); steps.append(stride[i])
        if self.is_const(x):
            arr = x[1]
            sl = tuple(slice(st, None if en == INT64_MAX else en, sp) for st, en, sp in zip(starts, ends, steps))
            arr = arr[sl]
            return ('c', np.squeeze(arr, axis=tuple(squeeze)) if squeeze else arr)
        y = self.op('Slice', [self.tensor(x), self.const(np.array(starts, np.int64), 'st'), self.const(np.array(ends, np.int64), 'en'),
                              self.const(np.array(axes, np.int64), 'ax'), self.const(np.array(steps, np.int64), 'sp')], node['name'])
        if squeeze:
            y = self.op('Squeeze', [y, self.const(np.array(squeeze, np.int64), 'sq')], node['name'])
        return ('t', y)

    def op_Pack(self, node, vals, a):
        axis = int(a.get('axis', {}).get('i', 0))
        if all(self.is_const(v) for v in vals):
            return ('c', np.stack([v[1] for v in vals], axis))
        parts = []
        for v in vals:
            t = self.tensor(v, 'raw') if self.is_const(v) else v[1]
            parts.append(self.op('Unsqueeze', [t, self.const(np.array([axis], np.int64), 'ax')], node['name']))
        return ('t', self.op('Concat', parts, node['name'], axis=axis))

    def op_ConcatV2(self, node, vals, a):
        *xs, axis = vals
        ax = int(axis[1])
        if all(self.is_const(v) for v in xs):
            return ('c', np.concatenate([v[1] for v in xs], ax))
        return ('t', self.op('Concat', [self.tensor(v) for v in xs], node['name'], axis=ax))

    def op_Mean(self, node, vals, a):
        x, axes = vals
        keep = 1 if a.get('keep_dims', {}).get('b') else 0
        return ('t', self.op('ReduceMean', [self.tensor(x)], node['name'], axes=np.atleast_1d(axes[1]).astype(int).tolist(), keepdims=keep))

    def op_Split(self, node, vals, a):
        axis, x = vals
        n = int(a['num_split']['i'])
        outs = self.op('Split', [self.tensor(x)], node['name'], n_out=n, axis=int(axis[1]))
        return [('t', o) for o in outs]

    def op_SplitV(self, node, vals, a):
        x, sizes, axis = vals
        n = int(a['num_split']['i'])
        s = sizes[1].astype(np.int64)
        assert (s >= 0).all(), s
        outs = self.op('Split', [self.tensor(x), self.const(s, 'split')], node['name'], n_out=n, axis=int(axis[1]))
        return [('t', o) for o in outs]

    def op_Pad(self, node, vals, a):
        x, p = vals
        pads = p[1].astype(np.int64)
        return ('t', self.op('Pad', [self.tensor(x), self.const(np.concatenate([pads[:, 0], pads[:, 1]]), 'pads')], node['name']))

    def op_BroadcastTo(self, node, vals, a):
        x, shape = vals
        s = self.op('Cast', [self.tensor(shape, 'raw')], node['name'], to=TensorProto.INT64)
        return ('t', self.op('Expand', [self.tensor(x), s], node['name']))

    def op_Slice(self, node, vals, a):
        x, begin, size = vals
        assert self.is_const(begin)
        b = begin[1].astype(np.int64)
        sz = self.op('Cast', [self.tensor(size, 'raw')], node['name'], to=TensorProto.INT64)
        bn = self.const(b, 'begin')
        end = self.op('Add', [bn, sz], node['name'])
        to_end = self.op('Equal', [sz, self.const(np.array(-1, np.int64), 'm1')], node['name'])
        end = self.op('Where', [to_end, self.const(np.array(INT64_MAX, np.int64), 'big'), end], node['name'])
        return ('t', self.op('Slice', [self.tensor(x), bn, end], node['name']))

    def nchw(self, x, hint):
        return self.op('Transpose', [x], hint, perm=[0, 3, 1, 2])

    def nhwc(self, x, hint):
        return self.op('Transpose', [x], hint, perm=[0, 2, 3, 1])

    def op_ResizeBilinear(self, node, vals, a):
        assert a['half_pixel_centers']['b'] and not a['align_corners'].get('b', False)
        x, size = vals
        xt = self.nchw(self.tensor(x), node['name'])
        nc = self.op('Slice', [self.op('Shape', [xt], node['name']), self.const(np.array([0], np.int64), 's'), self.const(np.array([2], np.int64), 'e')], node['name'])
        hw = self.op('Cast', [self.tensor(size, 'raw')], node['name'], to=TensorProto.INT64)
        sizes = self.op('Concat', [nc, hw], node['name'], axis=0)
        y = self.op('Resize', [xt, '', '', sizes], node['name'], mode='linear', coordinate_transformation_mode='half_pixel')
        return ('t', self.nhwc(y, node['name']))

    def op_AvgPool(self, node, vals, a):
        k = [int(i) for i in a['ksize']['list']['i']]
        s = [int(i) for i in a['strides']['list']['i']]
        pad = b64(a['padding']['s'])
        xt = self.nchw(self.tensor(vals[0]), node['name'])
        y = self.op('AveragePool', [xt], node['name'], kernel_shape=k[1:3], strides=s[1:3],
                    auto_pad='SAME_UPPER' if pad == 'SAME' else 'VALID', count_include_pad=0)
        return ('t', self.nhwc(y, node['name']))

    def op_SpaceToBatchND(self, node, vals, a):
        # Only as TensorFlow writes a dilated convolution: SpaceToBatchND → VALID conv → BatchToSpaceND.
        block = self.value(node['input'][1])[1].tolist()
        assert block[0] == block[1], block
        return ('stb', vals[0], block[0])

    def op_BatchToSpaceND(self, node, vals, a):
        y = vals[0]
        assert y[0] == 'dilated', node['name']
        return ('t', y[1])

    def conv(self, node, vals, a, depthwise, fused):
        x, wref = vals[0], node['input'][1]
        dilation = 1
        if x[0] == 'stb':
            _, x, dilation = x
        pad = b64(a['padding']['s'])
        strides = [int(i) for i in a['strides']['list']['i']][1:3]
        dil = [int(i) for i in a['dilations']['list']['i']][1:3]
        assert dil == [1, 1]
        kh, kw, cin, m = vals[1][1].shape
        if depthwise:
            w = self.filter(wref, (2, 3, 0, 1), (cin * m, 1, kh, kw))
            group = cin
        else:
            w = self.filter(wref, (3, 2, 0, 1), None)
            group = 1
        inputs = [self.nchw(self.tensor(x), node['name']), w]
        ops = [b64(s) for s in a.get('fused_ops', {}).get('list', {}).get('s', [])] if fused else []
        if ops:
            assert ops[0] == 'BiasAdd', ops
            bias = node['input'][2]
            inputs.append(self.filter(bias, None, None))
        attrs = dict(kernel_shape=[kh, kw], strides=strides, dilations=[dilation, dilation], group=group)
        if pad == 'SAME':
            attrs['auto_pad'] = 'SAME_UPPER'
        else:
            attrs['pads'] = [0, 0, 0, 0]
        y = self.op('Conv', inputs, node['name'], **attrs)
        for act in ops[1:]:
            if act == 'Relu':
                y = self.op('Relu', [y], node['name'])
            elif act == 'Relu6':
                y = self.op('Clip', [y, self.const(np.float32(0), 'lo'), self.const(np.float32(6), 'hi')], node['name'])
            else:
                raise NotImplementedError(act)
        y = self.nhwc(y, node['name'])
        return ('dilated', y) if dilation > 1 else ('t', y)

    def op_FusedConv2D(self, node, vals, a):
        return self.conv(node, vals, a, False, True)

    def op_Conv2D(self, node, vals, a):
        return self.conv(node, vals, a, False, False)

    def op_FusedDepthwiseConv2dNative(self, node, vals, a):
        return self.conv(node, vals, a, True, True)

    def op_DepthwiseConv2dNative(self, node, vals, a):
        return self.conv(node, vals, a, True, False)


def convert(json_path, out_path):
    meta = json.load(open(json_path))
    bin_path = os.path.join(os.path.dirname(json_path), os.path.splitext(os.path.basename(json_path))[0] + '.bin')
    weights = load_weights(meta, open(bin_path, 'rb').read())
    c = Converter(meta, weights)

    sig = meta['signature']
    outputs = {'pha': sig['outputs']['pha']['name'], **{f'r{i}o': sig['outputs'][f'r{i}o']['name'] for i in range(1, 5)}}
    graph_outputs = []
    for name, ref in outputs.items():
        v = c.value(ref)
        assert v[0] == 't', (name, v[0])
        c.onnx_nodes.append(helper.make_node('Identity', [v[1]], [name], name='out_' + name))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, f'{name}_h', f'{name}_w', None]))
    inputs = [helper.make_tensor_value_info('src', TensorProto.FLOAT, [1, 'height', 'width', 3])]
    inputs += [helper.make_tensor_value_info(f'r{i}i', TensorProto.FLOAT, [1, f'r{i}_h', f'r{i}_w', f'r{i}_c']) for i in range(1, 5)]
    # Only what the outputs read: the shape arithmetic of the rewritten SpaceToBatchND paddings and
    # the weights of the branches not taken are left out.
    producer = {o: n for n in c.onnx_nodes for o in n.output}
    keep, todo = set(), [n for n in c.onnx_nodes if n.name.startswith('out_')]
    while todo:
        n = todo.pop()
        if id(n) in keep:
            continue
        keep.add(id(n))
        todo += [producer[i] for i in n.input if i in producer]
    c.onnx_nodes = [n for n in c.onnx_nodes if id(n) in keep]
    used = {i for n in c.onnx_nodes for i in n.input}
    inits = [t for t in c.inits if t.name in used]
    graph = helper.make_graph(c.onnx_nodes, 'rvm_mobilenetv3', inputs, graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)], producer_name='cleanplate export_rvm_onnx.py')
    model.doc_string = ('Robust Video Matting (MobileNetV3), Lin et al. 2021, GPL-3.0, converted from the TF.js graph model '
                        f'(sha256 of rvm.bin {hashlib.sha256(open(bin_path, "rb").read()).hexdigest()}); downsample ratio 0.5')
    onnx.checker.check_model(model)
    tmp = out_path + '.tmp'
    onnx.save(model, tmp)
    os.replace(tmp, out_path)
    data = open(out_path, 'rb').read()
    print(json.dumps({'file': out_path, 'bytes': len(data), 'sha256': hashlib.sha256(data).hexdigest(), 'nodes': len(c.onnx_nodes)}))


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: export_rvm_onnx.py models/prior/rvm.json OUT.onnx')
    convert(sys.argv[1], sys.argv[2])
