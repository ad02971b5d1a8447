"""Training code: torch twin == golden float forward, loss falls, export -> load -> int8 round trip, CLI errors."""

import argparse
import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch (the optional 'train' extra) is not installed")

from ternkws.golden import checkpoint  # noqa: E402
from ternkws.golden.network import forward_float, forward_int, init_random  # noqa: E402
from ternkws.golden.topology import Block, Topology, count_parameters, plan  # noqa: E402
from ternkws.golden.train.augment import WARP_BANK, AugmentConfig, Augmenter, augment, warp_matrices  # noqa: E402
from ternkws.golden.train.model import KWSNet, count_trainable, load_golden_arrays, to_golden_arrays  # noqa: E402
from ternkws.golden.train.tinydata import make_tiny_dataset  # noqa: E402
from ternkws.golden.train.trainer import TrainConfig, export, fit, load_splits, predict, preset  # noqa: E402
from ternkws.golden.errors import UserError  # noqa: E402
from ternkws.golden.labels import LABELS  # noqa: E402

torch.set_num_threads(1)   # tiny models: one thread is as fast, and never spin-waits on a busy CI box

TINY = Topology(prologue_channels=16, prologue_kernel=5, blocks=(Block(16, 5), Block(16, 7, repeat=2)),
                epilogue_channels=16, epilogue_kernel=5, epilogue_dilation=2, final_channels=16)


@pytest.fixture(scope="module")
def tiny_splits(tmp_path_factory):
    d = make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data", per_class=(6, 2, 2), seed=1)
    return d, load_splits(d, progress=False, jobs=1)


@pytest.mark.parametrize("top", [Topology(), Topology(mixer="learned"), Topology.from_name("3x2x64"),
                                 Topology.from_name("3x2x64", mixer="learned"), TINY],
                         ids=["ternary", "learned", "ternary-3x2x64", "learned-3x2x64", "tiny"])
def test_torch_equals_golden_forward(top):
    rng = np.random.default_rng(3)
    x = np.clip(rng.normal(0, 32, (2, 40, top.n_mfcc)), -128, 127)   # any frame count works
    arrays = init_random(top, rng, x)
    m = load_golden_arrays(KWSNet(top), arrays).double().eval()
    with torch.no_grad():
        y = m(torch.from_numpy(x)).numpy()
    ref = forward_float(top, arrays, x)
    assert np.max(np.abs(y - ref)) <= 1e-4
    back = to_golden_arrays(m)
    assert set(back) == set(arrays)
    assert all(np.array_equal(back[k], arrays[k]) for k in arrays)


def test_parameter_counts():
    assert count_trainable(KWSNet(Topology(mixer="learned"))) == count_parameters(Topology(mixer="learned")) == 74892
    for top in (Topology(), Topology.from_name("3x2x64"), preset("budget")[0], TINY):
        m = KWSNet(top)
        assert count_trainable(m) == count_parameters(top)
    # the ternary 1x1 is a buffer: in the state dict, never a parameter
    m = KWSNet(Topology())
    names = {n for n, _ in m.named_parameters()}
    assert not any(n.endswith("pw.weight") for n in names)
    assert "layers.0.pw.weight" in m.state_dict()
    w = m.state_dict()["layers.0.pw.weight"]
    assert set(torch.unique(w).tolist()) <= {-1.0, 0.0, 1.0}


def test_augment_shapes_and_range():
    x = torch.randn(4, 128, 64) * 50
    y = augment(x, AugmentConfig(), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and float(y.abs().max()) <= 128
    assert float((y == 0).float().mean()) > 0.05          # masks applied
    assert torch.equal(augment(x, AugmentConfig.off()), x.clamp(-128, 127))


def test_augment_presets():
    from ternkws.golden.errors import UserError
    assert AugmentConfig.named("full") == AugmentConfig()
    assert AugmentConfig.named("off") == AugmentConfig.off()
    light = AugmentConfig.named("light")
    assert light.rect_masks == 0 and light.freq_masks == 1 and light.warp == AugmentConfig().warp
    x = torch.randn(64, 128, 64) * 50
    masked = [float((augment(x, c, torch.Generator().manual_seed(0)) == 0).float().mean())
              for c in (AugmentConfig(), light)]
    assert masked[1] < masked[0] / 2                      # lighter: far fewer masked values
    with pytest.raises(UserError, match="unknown augmentation 'heavy'; choose one of full, light, off"):
        AugmentConfig.named("heavy")


def test_speaker_warp():
    from ternkws.golden.features import FeatureConfig
    m = warp_matrices([1.0, 1.1, 0.9], FeatureConfig())
    assert np.allclose(m[0], np.eye(64))
    e = np.zeros(64)
    e[30] = 1
    assert np.argmax(e @ m[1]) > 30 > np.argmax(e @ m[2])          # formants move up for a > 1
    rng = np.random.default_rng(0)
    aug = Augmenter(AugmentConfig(**{**AugmentConfig.off().__dict__, "warp": 0.1}), rng.normal(0, 9, 64),
                    rng.uniform(0.5, 2, 64))
    a, b = aug.maps
    assert a.shape == (WARP_BANK, 64, 64)
    assert torch.allclose(a[WARP_BANK // 2], torch.eye(64), atol=1e-5) and float(b[WARP_BANK // 2].abs().max()) < 1e-4


def test_loss_falls_and_export_roundtrip(tiny_splits, tmp_path):
    d, s = tiny_splits
    assert len(s.y["train"]) == 72 and len(s.y["test"]) == 24
    torch.manual_seed(0)
    m = KWSNet(TINY)
    cfg = TrainConfig(epochs=100, batch=72, lr=3e-2, max_steps=30, augment=AugmentConfig.off())
    history, losses, best = fit(m, s.x["train"], s.y["train"], s.x["val"], s.y["val"], cfg, progress=False,
                                log=lambda *a: None)
    assert len(losses) == 30 and best >= 1
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])

    out = tmp_path / "tiny.npz"
    export(m, s.x["train"][:16], s.mean, s.scale, {"trained": True, "description": "test"}, out)
    model = checkpoint.load(out)
    assert model.trained and model.topology == TINY
    # golden float forward of the loaded checkpoint == the torch module
    with torch.no_grad():
        ref = m.double()(torch.from_numpy(s.x["test"].astype(np.float64))).numpy()
    got = forward_float(model.topology, model.float_arrays, s.x["test"])
    assert np.max(np.abs(got - ref)) < 1e-3 * max(1.0, np.max(np.abs(ref)))
    # int8 inference on the loaded model: mostly the float decision
    from ternkws.golden.evaluate import cached_ternary
    from ternkws.golden.features import quantize
    xq = quantize(s.raw["test"], model.feature_mean, model.feature_scale)
    with cached_ternary():
        pred_int = np.array([np.argmax(forward_int(model.topology, model.int_arrays, q)) for q in xq])
    assert np.mean(pred_int == np.argmax(got, axis=1)) >= 0.75


def _train_args(**kw):
    from ternkws.commands import train as cmd
    p = argparse.ArgumentParser()
    cmd.configure(p)
    argv = []
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        argv += [flag] if v is True else [flag, str(v)]
    return cmd, p.parse_args(argv)


def test_train_cli_bad_inputs(tmp_path, tiny_splits):
    d, _ = tiny_splits
    cmd, args = _train_args(data=tmp_path / "nope", out=tmp_path / "m.npz")
    with pytest.raises(UserError, match="no such dataset directory"):
        cmd.run(args)
    cmd, args = _train_args(data=d, out=tmp_path / "m.npz", arch="resnet")
    with pytest.raises(UserError, match="unknown --arch 'resnet'"):
        cmd.run(args)
    cmd, args = _train_args(data=d, out=tmp_path / "m.npz", model="ternary")    # the old name of --arch
    with pytest.raises(UserError, match="train takes the architecture as --arch"):
        cmd.run(args)
    cmd, args = _train_args(data=d, out=tmp_path / "m.txt")
    with pytest.raises(UserError, match=".npz"):
        cmd.run(args)
    cmd, args = _train_args(data=d, out=tmp_path / "m.npz", teacher=tmp_path / "none.npz")
    with pytest.raises(UserError, match="--teacher"):
        cmd.run(args)
    cmd, args = _train_args(data=d, out=tmp_path / "m.npz", epochs=0)
    with pytest.raises(UserError, match="--epochs"):
        cmd.run(args)
    plain = tmp_path / "plain"
    (plain / "yes").mkdir(parents=True)
    (d / "yes").iterdir()
    import shutil
    shutil.copy(next((d / "yes").glob("*.wav")), plain / "yes" / "a.wav")
    cmd, args = _train_args(data=plain, out=tmp_path / "m.npz")
    with pytest.raises(UserError, match="train, val and test splits"):
        cmd.run(args)


def test_train_cli_end_to_end(tmp_path, tiny_splits, capsys):
    from ternkws.cli import main
    d, _ = tiny_splits
    out = tmp_path / "m.npz"
    rc = main(["train", "--data", str(d), "--out", str(out), "--arch", "ternary", "--epochs", "1",
               "--batch", "36", "--threads", "1", "--quiet", "--plots", str(tmp_path / "plots")])
    assert rc == 0
    model = checkpoint.load(out)
    assert model.meta["trained"] and model.meta["epochs"] == 1
    for key in ("description", "dataset", "float_val_accuracy", "int8_test_accuracy", "float_test_accuracy"):
        assert key in model.meta
    assert (tmp_path / "plots" / "curves-m.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "confusion-m.png").stat().st_size > 1000
    # distillation from that checkpoint (same data, so the same feature map)
    out2 = tmp_path / "kd.npz"
    rc = main(["train", "--data", str(d), "--out", str(out2), "--arch", "ternary", "--epochs", "1",
               "--batch", "36", "--threads", "1", "--quiet", "--teacher", str(out)])
    assert rc == 0 and checkpoint.load(out2).meta["teacher"] == "m.npz"
    # the auxiliary sub-class head: recorded in the meta; the model keeps its 12 outputs
    out3 = tmp_path / "aux.npz"
    rc = main(["train", "--data", str(d), "--out", str(out3), "--epochs", "1", "--batch", "36", "--threads", "1",
               "--quiet", "--aux-subclasses", "0.5"])
    aux = checkpoint.load(out3)
    assert rc == 0 and aux.meta["aux_subclasses"] == 13 and aux.meta["train_config"]["aux_weight"] == 0.5
    assert aux.topology.n_classes == 12 and checkpoint.load(out2).meta["aux_subclasses"] is None


def test_aux_needs_a_dataset_that_names_its_sub_classes(tmp_path, tiny_splits):
    import csv
    import shutil
    d, _ = tiny_splits
    bare = tmp_path / "bare"
    shutil.copytree(d, bare)
    with open(d / "manifest.csv") as f:
        rows = [{k: r[k] for k in ("file", "label", "speaker", "split")} for r in csv.DictReader(f)]
    with open(bare / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cmd, args = _train_args(data=bare, out=tmp_path / "m.npz", epochs=1, threads=1, quiet=True, aux_subclasses=0.5)
    with pytest.raises(UserError, match="does not say what its unknown and silence clips hold"):
        cmd.run(args)


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("ema, aux", [(None, 0.0), (0.9, 0.0), (None, 0.5)], ids=["weights", "ema", "aux"])
def test_resume_gives_the_uninterrupted_weights(tiny_splits, tmp_path, ema, aux):
    """A run killed during epoch 3 and resumed from its epoch-2 state ends with the same weights, history
    and best epoch as a run that was never interrupted (every random generator is in the state, and the
    weight average with --ema, and the auxiliary head with --aux-subclasses)."""
    from ternkws.golden.train.trainer import subclass_targets
    _, s = tiny_splits
    cfg = TrainConfig(epochs=4, batch=24, lr=1e-2, ema=ema, aux_weight=aux,
                      augment=AugmentConfig())   # augmentation on: its RNG too
    args = (s.x["train"], s.y["train"], s.x["val"], s.y["val"], cfg)
    kw = dict(progress=False, feature_map=(s.mean, s.scale), identity={"run": 1},
              ysub=subclass_targets(s.subclasses["train"])[1] if aux else None)

    torch.manual_seed(0)
    ref = KWSNet(TINY)
    h_ref, l_ref, b_ref = fit(ref, *args, log=lambda *a: None, state_file=tmp_path / "ref.pt", **kw)

    def die_in_epoch_3(line):
        if line.startswith("epoch   3/"):
            raise _Interrupt          # after epoch 3's training, before its state is written
    state = tmp_path / "run.pt"
    torch.manual_seed(0)
    with pytest.raises(_Interrupt):
        fit(KWSNet(TINY), *args, log=die_in_epoch_3, state_file=state, **kw)
    assert torch.load(state, weights_only=False)["epoch"] == 2
    torch.manual_seed(123)            # a fresh process: other initial weights, which the state replaces
    m = KWSNet(TINY)
    lines = []
    h, losses, best = fit(m, *args, log=lines.append, state_file=state, resume=True, **kw)
    assert lines[0].startswith("resumed from") and "epoch 2/4" in lines[0]
    assert len(h) == 4 and best == b_ref and losses == l_ref
    assert [e["val_acc"] for e in h] == [e["val_acc"] for e in h_ref]
    for (k, a), (_, b) in zip(ref.state_dict().items(), m.state_dict().items()):
        assert torch.equal(a, b), k


def test_weight_average():
    """avg <- d avg + (1 - d) w with d = min(decay, (1 + n) / (10 + n)); integer buffers are copied; the
    module it averages is left alone."""
    from ternkws.golden.train.trainer import WeightAverage
    torch.manual_seed(0)
    m = KWSNet(TINY)
    expect = {k: v.clone().double() for k, v in m.state_dict().items() if v.is_floating_point()}
    avg = WeightAverage(m, 0.5)
    for n in range(3):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(1.0)
            m.state_dict()["layers.0.bn.num_batches_tracked"].fill_(7 + n)
        avg.update(m)
        d = min(0.5, (1 + n) / (10 + n))
        cur = m.state_dict()
        for k in expect:
            expect[k] = d * expect[k] + (1 - d) * cur[k].double()
    got = avg.module.state_dict()
    for k, v in expect.items():
        assert torch.allclose(got[k].double(), v, atol=1e-5), k
    assert int(got["layers.0.bn.num_batches_tracked"]) == 9
    some = next(k for k, _ in m.named_parameters())
    assert not torch.equal(got[some], m.state_dict()[some])     # an average, not the module's weights
    assert all(not p.requires_grad for p in avg.module.parameters())


def test_fit_with_ema_keeps_the_average(tiny_splits):
    """With --ema the kept weights are the average that was validated: fit ends with the module holding the
    best epoch's average, and that average's val accuracy is what the history reports."""
    _, s = tiny_splits
    cfg = TrainConfig(epochs=3, batch=24, lr=1e-2, ema=0.9, augment=AugmentConfig.off())
    torch.manual_seed(0)
    m = KWSNet(TINY)
    h, _, best = fit(m, s.x["train"], s.y["train"], s.x["val"], s.y["val"], cfg, progress=False,
                     log=lambda *a: None)
    vacc = float((predict(m, s.x["val"]).argmax(1) == torch.as_tensor(s.y["val"])).float().mean())
    assert vacc == pytest.approx(h[best - 1]["val_acc"])
    torch.manual_seed(0)
    plain = KWSNet(TINY)
    fit(plain, s.x["train"], s.y["train"], s.x["val"], s.y["val"], dataclasses.replace(cfg, ema=None),
        progress=False, log=lambda *a: None)
    assert any(not torch.equal(a, b) for a, b in zip(m.state_dict().values(), plain.state_dict().values()))


def test_aux_head_shapes_training_and_is_not_exported(tiny_splits):
    """--aux-subclasses: the sub-classes are the unknown words and silence kinds (tinydata names two
    unknown words); the head changes the losses and weights, while the module keeps its 12 outputs and
    its parameter count; without the targets it is refused."""
    from ternkws.golden.train.trainer import subclass_targets
    _, s = tiny_splits
    names, ysub = subclass_targets(s.subclasses["train"])
    assert "unknown:bed" in names and "unknown:cat" in names and "silence:<noise>" in names and len(names) == 13
    assert [names[i].split(":")[0] for i in ysub] == [LABELS[k] for k in s.y["train"]]
    runs = {}
    for w in (0.0, 1.0):
        cfg = TrainConfig(epochs=2, batch=24, lr=1e-2, aux_weight=w, augment=AugmentConfig.off())
        torch.manual_seed(0)
        m = KWSNet(TINY)
        _, losses, _ = fit(m, s.x["train"], s.y["train"], s.x["val"], s.y["val"], cfg, progress=False,
                           log=lambda *a: None, ysub=ysub if w else None)
        runs[w] = (m, losses)
    (m0, l0), (m1, l1) = runs[0.0], runs[1.0]
    assert l1[0] > l0[0] + 0.5                        # the sub-class CE is in the loss (about log 13 at first)
    assert m1.classifier.out_features == 12 and count_trainable(m1) == count_parameters(TINY)
    assert any(not torch.equal(a, b) for a, b in zip(m0.state_dict().values(), m1.state_dict().values()))
    with pytest.raises(ValueError, match="sub-class targets"):
        fit(KWSNet(TINY), s.x["train"], s.y["train"], s.x["val"], s.y["val"],
            TrainConfig(epochs=1, aux_weight=0.5), progress=False, log=lambda *a: None)


def test_resume_refuses_another_configuration(tiny_splits, tmp_path):
    _, s = tiny_splits
    cfg = TrainConfig(epochs=1, batch=24, augment=AugmentConfig.off())
    args = (s.x["train"], s.y["train"], s.x["val"], s.y["val"], cfg)
    fit(KWSNet(TINY), *args, progress=False, log=lambda *a: None, state_file=tmp_path / "s.pt",
        identity={"lr": 1, "data": "a"})
    with pytest.raises(UserError, match="another configuration .*differs in lr"):
        fit(KWSNet(TINY), *args, progress=False, log=lambda *a: None, state_file=tmp_path / "s.pt", resume=True,
            identity={"lr": 2, "data": "a"})
    # a run saved before an option existed had it at its default: it resumes, and refuses another value
    from ternkws.golden.train.trainer import NOT_IDENTITY
    recipe = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in NOT_IDENTITY}
    old = {"recipe": {k: v for k, v in recipe.items() if k != "unknown_weight"}, "data": "a"}
    fit(KWSNet(TINY), *args, progress=False, log=lambda *a: None, state_file=tmp_path / "o.pt", identity=old)
    now = {"recipe": recipe, "data": "a"}
    fit(KWSNet(TINY), *args, progress=False, log=lambda *a: None, state_file=tmp_path / "o.pt", resume=True,
        identity=now)
    with pytest.raises(UserError, match="another configuration .*differs in recipe"):
        fit(KWSNet(TINY), *args, progress=False, log=lambda *a: None, state_file=tmp_path / "o.pt", resume=True,
            identity={**now, "recipe": {**now["recipe"], "unknown_weight": 2.0}})


def test_train_cli_topology_and_resume_errors(tmp_path, tiny_splits):
    d, _ = tiny_splits
    cmd, args = _train_args(data=d, out=tmp_path / "m.npz", topology="3x1")
    with pytest.raises(UserError, match="BxRxC"):
        cmd.run(args)
    cmd, args = _train_args(data=d, out=tmp_path / "m.npz", outer_channels=32)
    with pytest.raises(UserError, match="--outer-channels goes with --topology"):
        cmd.run(args)
    cmd, args = _train_args(data=d, out=tmp_path / "m.npz", resume=True)
    with pytest.raises(UserError, match="no interrupted run"):
        cmd.run(args)
    cmd, args = _train_args(data=d, out=tmp_path / "m.npz", label_smoothing=1.5)
    with pytest.raises(UserError, match="--label-smoothing"):
        cmd.run(args)
    for bad in (1.0, 0.0, -0.5):
        cmd, args = _train_args(data=d, out=tmp_path / "m.npz", ema=bad)
        with pytest.raises(UserError, match="--ema must be in"):
            cmd.run(args)
    cmd, args = _train_args(data=d, out=tmp_path / "m.npz", aux_subclasses=-1)
    with pytest.raises(UserError, match="--aux-subclasses must be in"):
        cmd.run(args)
    for bad in (0, 1025):
        cmd, args = _train_args(data=d, out=tmp_path / "m.npz", final_channels=bad)
        with pytest.raises(UserError, match=r"--final-channels must be in \[1, 1024\]"):
            cmd.run(args)


def test_train_cli_topology_sizes_the_family(tmp_path, tiny_splits):
    from ternkws.cli import main
    d, _ = tiny_splits
    out = tmp_path / "small.npz"
    rc = main(["train", "--data", str(d), "--out", str(out), "--arch", "learned", "--topology", "2x1x8",
               "--epochs", "1", "--batch", "36", "--threads", "1", "--quiet"])
    assert rc == 0 and not (tmp_path / "small.npz.state.pt").exists()
    top = checkpoint.load(out).topology
    assert top.mixer == "learned" and [b.channels for b in top.blocks] == [8, 8]
    assert (top.prologue_channels, top.epilogue_channels, top.final_channels) == (16, 16, 16)
    wide = tmp_path / "wide.npz"
    rc = main(["train", "--data", str(d), "--out", str(wide), "--topology", "2x1x8", "--final-channels", "40",
               "--epochs", "1", "--batch", "36", "--threads", "1", "--quiet"])
    model = checkpoint.load(wide)
    top = model.topology
    assert rc == 0 and (top.prologue_channels, top.epilogue_channels, top.final_channels) == (16, 16, 40)
    assert model.float_arrays["classifier.weight"].shape == (12, 40)


def test_train_cli_density(tmp_path, tiny_splits):
    """--density D: the checkpoint's ternary matrices hold that fraction of nonzeros (grouped: exactly one per
    group of 1/D inputs); a fraction or a decimal; refused outside (0, 1], for the learned family, and for
    a grouped density that is not 1/M."""
    from ternkws.cli import main
    from ternkws.commands.train import parse_density
    from ternkws.golden.ternary_generator import ternary_matrix
    d, _ = tiny_splits
    assert parse_density("1/2") == 0.5 and parse_density("0.25") == 0.25 and parse_density("1") == 1.0
    for density, m in (("1/2", 2), ("1", 1)):
        out = tmp_path / f"d{m}.npz"
        rc = main(["train", "--data", str(d), "--out", str(out), "--topology", "2x1x8", "--density", density,
                   "--epochs", "1", "--batch", "36", "--threads", "1", "--quiet"])
        top = checkpoint.load(out).topology
        assert rc == 0 and top.density == 1 / m and top.pattern == "grouped"
        layer = plan(top)[1]                             # block 0: 16 -> 8 channels
        w = ternary_matrix(layer.seed, layer.c_out, layer.c_in, top.density, top.pattern)
        assert (np.count_nonzero(w.reshape(layer.c_out, -1, m), axis=2) == 1).all()
    for bad in ("0", "1.5", "4/3", "1/0", "half"):
        cmd, args = _train_args(data=d, out=tmp_path / "m.npz", density=bad)
        with pytest.raises(UserError, match=r"--density must be a fraction of nonzero entries in \(0, 1\]"):
            cmd.run(args)
    cmd, args = _train_args(data=d, out=tmp_path / "m.npz", density="0.4")
    with pytest.raises(UserError, match="grouped pattern's density is 1/M.*use 1/2 or 1/3"):
        cmd.run(args)
    cmd, args = _train_args(data=d, out=tmp_path / "m.npz", density="1/2", arch="learned")
    with pytest.raises(UserError, match="--density sets the ternary matrices"):
        cmd.run(args)


def test_unknown_weight_pulls_toward_unknown(tiny_splits):
    """--unknown-weight W: unknown clips count W times in the loss (CE and distillation alike), so the
    same run with W = 8 gives unknown more probability on the train clips than W = 1; W = 1 is the plain
    mean; the CLI refuses a weight outside (0, 10]."""
    _, s = tiny_splits
    unknown = LABELS.index("unknown")
    prob = {}
    for w in (1.0, 8.0):
        cfg = TrainConfig(epochs=3, batch=24, lr=1e-2, unknown_weight=w, augment=AugmentConfig.off())
        torch.manual_seed(0)
        m = KWSNet(TINY)
        fit(m, s.x["train"], s.y["train"], s.x["val"], s.y["val"], cfg, progress=False, log=lambda *a: None)
        prob[w] = float(torch.softmax(predict(m, s.x["train"]), dim=1)[:, unknown].mean())
    assert prob[8.0] > prob[1.0] + 0.02, prob
    d, _ = tiny_splits
    for bad in (0, -1, 11):
        cmd, args = _train_args(data=d, out="m.npz", unknown_weight=bad)
        with pytest.raises(UserError, match=r"--unknown-weight must be in \(0, 10\]"):
            cmd.run(args)
