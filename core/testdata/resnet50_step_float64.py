"""Float64 re-computation of the ResNet-50 fixture's fine-tuning step, with NumPy only.

Why: core/resnet50_parity_test.ts compares webtune with PyTorch's float32 numbers in
../shared/fixtures/torch-resnet50/. This script computes the same step (F16 weights widened,
fc from head_init_*, train-mode BatchNorm, summed cross-entropy, backward, SGD lr 0.01 / fc 0.1,
weight decay 0.001, running stats with momentum 0.1 and the unbiased variance, then the eval
logits) in float64, and prints how far PyTorch's float32 reference is from it. Those numbers are
the test's FLOAT32_FLOOR.

    python3 core/testdata/resnet50_step_float64.py           # float64; writes the reference below
    python3 core/testdata/resnet50_step_float64.py float32   # the same code in float32

About a minute each. The float64 run writes core/testdata/resnet50_step_float64.safetensors
(F32 storage of the float64 results, 0.27 MB): the quantities whose test limits are looser than
ResNet-18's (OUT below), so the test can also measure webtune against exact arithmetic
without Python. The float32 run prints, besides PyTorch-vs-NumPy-float32, how far NumPy's float32
answer is from that float64 file.
"""
import json, os, struct, sys, numpy as np
def load(path):
    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n]); base = 8+n
    out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']; dt = {'F16': np.float16, 'F32': np.float32, 'I64': np.int64}[v['dtype']]
        out[k] = np.frombuffer(b[base+s:base+e], dtype=dt).reshape(v['shape'])
    return out
F = os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../../shared/fixtures/torch-resnet50/')
W = {k: v.astype(np.float64) for k, v in load(F+'resnet50-seed0-f16.safetensors').items()}
R = load(F+'resnet50-seed0-reference.safetensors')
W['fc.weight'] = R['head_init_weight'].astype(np.float64); W['fc.bias'] = R['head_init_bias'].astype(np.float64)
DT = np.float64 if len(sys.argv) < 2 else np.dtype(sys.argv[1])
W = {k: v.astype(DT) for k, v in W.items()}
x0 = R['step_input_nchw'].astype(DT); labels = R['step_labels']
G = {}; FACTORS = {}
def conv(x, name, s, p):
    w = W[name + '.weight']; O, C, KH, KW = w.shape; N, _, H, Wd = x.shape
    xp = np.pad(x, ((0,0),(0,0),(p,p),(p,p))); Ho = (H + 2*p - KH)//s + 1; Wo = (Wd + 2*p - KW)//s + 1
    y = np.zeros((N, O, Ho, Wo), DT)
    for i in range(KH):
        for j in range(KW):
            y += np.einsum('nchw,oc->nohw', xp[:, :, i:i+s*Ho:s, j:j+s*Wo:s], w[:, :, i, j])
    def back(dy):
        dxp = np.zeros_like(xp); dw = np.zeros_like(w)
        for i in range(KH):
            for j in range(KW):
                dw[:, :, i, j] = np.einsum('nohw,nchw->oc', dy, xp[:, :, i:i+s*Ho:s, j:j+s*Wo:s])
                dxp[:, :, i:i+s*Ho:s, j:j+s*Wo:s] += np.einsum('nohw,oc->nchw', dy, w[:, :, i, j])
        G[name + '.weight'] = dw
        if KH == 1 and KW == 1 and s == 1: FACTORS[name] = (dy, x)
        return dxp[:, :, p:p+H, p:p+Wd]
    return y, back
RS = {}
EVAL = [False]
def bn(x, name):
    g = W[name + '.weight'][None, :, None, None]; b = W[name + '.bias'][None, :, None, None]
    if EVAL[0]:
        rm = W[name + '.running_mean'][None, :, None, None]; rv = W[name + '.running_var'][None, :, None, None]
        return (x - rm)/np.sqrt(rv + 1e-5)*g + b, None
    m = x.mean((0, 2, 3), keepdims=True); xc = x - m; v = (xc**2).mean((0, 2, 3), keepdims=True)
    inv = 1/np.sqrt(v + 1e-5); xh = xc*inv; M = x.shape[0]*x.shape[2]*x.shape[3]
    RS[name + '.running_mean'] = 0.9*W[name + '.running_mean'] + 0.1*m[0, :, 0, 0]
    RS[name + '.running_var'] = 0.9*W[name + '.running_var'] + 0.1*v[0, :, 0, 0]*M/(M - 1)
    def back(dy):
        G[name + '.weight'] = (dy*xh).sum((0, 2, 3)); G[name + '.bias'] = dy.sum((0, 2, 3))
        dxh = dy*g
        return inv/M*(M*dxh - dxh.sum((0, 2, 3), keepdims=True) - xh*(dxh*xh).sum((0, 2, 3), keepdims=True))
    return xh*g + b, back
def relu(x):
    return np.maximum(x, 0), lambda dy: dy*(x > 0)
def maxpool(x):
    N, C, H, Wd = x.shape; xp = np.pad(x, ((0,0),(0,0),(1,1),(1,1)), constant_values=-np.inf); Ho = (H+2-3)//2+1; Wo = (Wd+2-3)//2+1
    win = np.stack([xp[:, :, i:i+2*Ho:2, j:j+2*Wo:2] for i in range(3) for j in range(3)])
    arg = win.argmax(0); y = win.max(0)
    def back(dy):
        dxp = np.zeros_like(xp)
        for k in range(9):
            i, j = divmod(k, 3); dxp[:, :, i:i+2*Ho:2, j:j+2*Wo:2] += dy*(arg == k)
        return dxp[:, :, 1:1+H, 1:1+Wd]
    return y, back
def seq(x, *fs):
    backs = []
    for f in fs:
        x, b = f(x); backs.append(b)
    def back(dy):
        for b in reversed(backs): dy = b(dy)
        return dy
    return x, back
def bottleneck(x, p, stride, down):
    main, bm = seq(x, lambda h: conv(h, p+'.conv1', 1, 0), lambda h: bn(h, p+'.bn1'), relu,
                   lambda h: conv(h, p+'.conv2', stride, 1), lambda h: bn(h, p+'.bn2'), relu,
                   lambda h: conv(h, p+'.conv3', 1, 0), lambda h: bn(h, p+'.bn3'))
    if down: sc, bs = seq(x, lambda h: conv(h, p+'.downsample.0', stride, 0), lambda h: bn(h, p+'.downsample.1'))
    else: sc, bs = x, (lambda d: d)
    y, br = relu(main + sc)
    return y, lambda dy: (lambda d: bm(d) + bs(d))(br(dy))
fs = [lambda h: conv(h, 'conv1', 2, 3), lambda h: bn(h, 'bn1'), relu, maxpool]
for li, (n, s) in enumerate([(3, 1), (4, 2), (6, 2), (3, 2)]):
    for b in range(n):
        fs.append(lambda h, p=f'layer{li+1}.{b}', st=(s if b == 0 else 1), d=(b == 0): bottleneck(h, p, st, d))
h, back = seq(x0, *fs)
feat = h.mean((2, 3)); logits = feat @ W['fc.weight'].T + W['fc.bias']
mx = logits.max(1, keepdims=True); lse = mx[:, 0] + np.log(np.exp(logits - mx).sum(1))
loss = lse - logits[np.arange(4), labels]
P = np.exp(logits - lse[:, None]); dl = P.copy(); dl[np.arange(4), labels] -= 1
G['fc.weight'] = dl.T @ feat; G['fc.bias'] = dl.sum(0)
dh = (dl @ W['fc.weight'])[:, :, None, None] * np.ones_like(h) / (h.shape[2]*h.shape[3])
back(dh)

def cmp(name, a, b, what='torch-f32', vs=None):
    a = np.asarray(a, np.float64); b = np.asarray(b, np.float64); e = np.abs(a-b).max(); s = np.abs(b).max()
    print(f'{name:36s} {what} vs {vs or np.dtype(DT).name}: max abs {e:.3g}, rel {e/s:.3g} (max {s:.4g})')
cmp('loss', R['step_loss_per_example'], loss)
for k in ['conv1.weight', 'bn1.weight', 'fc.weight']:
    cmp('grad_' + k, R['grad_' + k.replace('.', '_')], G[k])
# The fixture's names and PyTorch's layouts. layer4.2.conv3 is a 1x1 conv on 4 images of 2x2, so
# its weight gradient is a sum of 16 outer products: its factors (0.16 MB as F32) stand for the 1M-value
# gradient (4 MB); the test expands them.
L4 = 'layer4.2.conv3'
dy, xin = FACTORS[L4]
OUT = {'step_loss_per_example': loss, 'grad_conv1_weight': G['conv1.weight'],
       'grad_bn1_weight': G['bn1.weight'], 'grad_bn1_bias': G['bn1.bias'],
       'grad_fc_weight': G['fc.weight'],
       f'grad_factors.{L4}.output_grad': dy.transpose(0, 2, 3, 1).reshape(-1, dy.shape[1]),
       f'grad_factors.{L4}.input': xin.transpose(0, 2, 3, 1).reshape(-1, xin.shape[1])}
for k in list(G):
    W[k] = W[k] - (0.1 if k.startswith('fc.') else 0.01)*(G[k] + 0.001*W[k])
W.update(RS)
for k in R:
    if k.startswith('after_step.') and not k.endswith('tracked'):
        cmp(k, R[k], W[k[11:]])
for k in ['conv1.weight', 'fc.weight']:
    OUT['after_step.' + k] = W[k]
EVAL[0] = True
h, _ = seq(x0, *fs); logits = h.mean((2, 3)) @ W['fc.weight'].T + W['fc.bias']
cmp('after_step_eval_logits', R['after_step_eval_logits'], logits)
OUT['after_step_eval_logits'] = logits
OUT[f'after_step.{L4}.weight'] = W[L4 + '.weight']

REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'resnet50_step_float64.safetensors')
def expand(ref):
    """The reference's tensors, with layer4.2.conv3's weight after the step rebuilt from its factors."""
    g = (ref[f'grad_factors.{L4}.output_grad'].astype(np.float64).T @
         ref[f'grad_factors.{L4}.input'].astype(np.float64))
    w0 = load(F+'resnet50-seed0-f16.safetensors')[L4 + '.weight'].astype(np.float64)
    out = {k: v for k, v in ref.items() if not k.startswith('grad_factors.')}
    out[f'after_step.{L4}.weight'] = w0 - 0.01*(g.reshape(w0.shape) + 0.001*w0)
    return out
if DT == np.float64:
    tensors = {k: np.ascontiguousarray(v, np.float32) for k, v in OUT.items() if not k.startswith('after_step.' + L4)}
    header, offset = {'__metadata__': {'generated_by': 'python3 core/testdata/resnet50_step_float64.py (NumPy float64, stored as F32)'}}, 0
    for k in sorted(tensors):
        header[k] = {'dtype': 'F32', 'shape': list(tensors[k].shape), 'data_offsets': [offset, offset + tensors[k].nbytes]}
        offset += tensors[k].nbytes
    h = json.dumps(header, separators=(',', ':')).encode(); h += b' '*(-len(h) % 8)
    with open(REF + '.tmp', 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(tensors[k].tobytes() for k in sorted(tensors)))
    os.replace(REF + '.tmp', REF)
    print(f'wrote {REF}: {8 + len(h) + offset} bytes')
    ref = expand(load(REF))
    for k, v in ref.items():  # what F32 storage costs, against the float64 values
        cmp(k, v, OUT[k], 'stored F32')
elif os.path.exists(REF):
    for k, v in expand(load(REF)).items():
        cmp(k, OUT[k], v, f'numpy-{np.dtype(DT).name}', 'the float64 file')
