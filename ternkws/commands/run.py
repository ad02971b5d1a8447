"""`ternkws run`: features on the host -> the board (or the simulated board) over the UART protocol ->
class and logits per clip, compared with the golden int8 model.

    ternkws run --port /dev/ttyUSB1 [--baud 115200] [--model M] [--json] WAV...
    ternkws run --sim [--model M] [--config up5k|ecp5] [--json] WAV...

Both go through boards.host.Device; --sim runs BoardTop under Verilator behind a local TCP socket
(sim/board_sim.py), so the whole host path is exercised without hardware.

Results are printed as they come: the device's line once it has identified itself, then each clip's
line as soon as it is classified (a link failure later keeps them; with --json the document holds the
clips done so far and the error). A request that times out or comes back garbled (bad CRC) is sent
again once, with a line on stderr. Progress (the simulated board's start-up, the clip in flight) is on
stderr.
"""

import json
import time
from pathlib import Path

from ._common import EXIT_USER_ERROR, add_model_option, choices_metavar, model_kinds, read_each, require_some

EXAMPLES = """
ternkws run --port /dev/ttyUSB1 golden/samples/*.wav
ternkws run --sim --json golden/samples/yes.wav
ternkws run --port /dev/ttyUSB1 --model baseline golden/samples/yes.wav
"""

CONFIG_NAMES = ("up5k", "ecp5")   # hw/accelerator.py CONFIGS (checked in run; tests/test_cli_grammar.py)

# The clock assumed for the board-time estimate of a --sim run: the board each configuration is for.
BOARD_CLOCK_HZ = {"up5k": 12_000_000, "ecp5": 25_000_000}     # iCEBreaker, ULX3S oscillators


def configure(parser):
    parser.add_argument("wavs", nargs="+", metavar="WAV", help="16 kHz mono WAV clips, 8-32-bit PCM or float (all are read "
                        "first; a bad one is reported and skipped, exit status 2 at the end)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--port", metavar="DEV",
                        help="serial port of the board (e.g. /dev/ttyUSB1, or a pyserial URL such as "
                             "socket://host:port); list ports with `python -m serial.tools.list_ports`")
    target.add_argument("--sim", action="store_true",
                        help="talk to the simulated board (BoardTop under Verilator) instead of a port")
    parser.add_argument("--baud", type=int, default=115200, metavar="N", help="UART baud rate of the board (default 115200)")
    add_model_option(parser, help="the checkpoint the board was built from: " + model_kinds() + "; default: default")
    parser.add_argument("--config", default=None, metavar=choices_metavar(CONFIG_NAMES),
                        help="--sim only: accelerator configuration, default up5k (a board reports "
                             "the configuration it was built with)")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="S",
                        help="seconds to wait for a reply from a board (a classification gets 10x; default 2)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON object on stdout (refused files under \"errors\")")


def _open_port(name, baud):
    from ternkws.golden.errors import UserError
    try:
        import serial
    except ImportError:
        raise UserError("pyserial is not installed: pip install pyserial") from None
    if "://" not in name and not Path(name).exists():
        raise UserError(f"no device at {name}: is the board plugged in? list ports with "
                        f"`python -m serial.tools.list_ports`")
    try:
        return serial.serial_for_url(name, baudrate=baud, timeout=0.05)
    except (serial.SerialException, ValueError, OSError) as e:
        raise UserError(f"cannot open {name} at {baud} baud ({e}); is the board plugged in and the port free "
                        f"(not held by another program)? list ports with `python -m serial.tools.list_ports`") from None


def _identify(device, where, model, baud, progress=None):
    from ternkws.boards.host import PROTOCOL_VERSION, LinkError, LinkTimeout, PortError
    from ternkws.golden.errors import UserError
    try:
        info = device.retrying(device.identify, retries=RETRIES,
                               on_retry=lambda e, attempt: progress and progress.line(
                                   f"{where}: identify: {e}; retrying"))
    except PortError as e:
        raise UserError(f"{where}: {e}") from None
    except LinkTimeout:
        raise UserError(f"no reply from {where} within {device.timeout:g} s: is the ternkws bitstream loaded "
                        f"(ternkws flash) and the baud rate ({baud}) the one it was built for?") from None
    except LinkError as e:
        raise UserError(f"garbled reply from {where} ({e}); check the baud rate ({baud})") from None
    if info.protocol != PROTOCOL_VERSION:
        raise UserError(f"{where} speaks protocol version {info.protocol} (ternkws {info.version}); this host "
                        f"speaks version {PROTOCOL_VERSION}: flash a bitstream built by this ternkws")
    if info.model_id != model.model_id:
        raise UserError(f"model mismatch: {where} runs model {info.model_id}, but the checkpoint {model.path} is "
                        f"model {model.model_id}; build and flash a bitstream of this checkpoint (ternkws build "
                        f"--board BOARD --model {model.path}, then ternkws flash --board BOARD --model "
                        f"{model.path}) or pass the checkpoint the board was built from with --model")
    if (info.n_mfcc, info.n_frames) != (model.topology.n_mfcc, model.features.n_frames):
        raise UserError(f"{where} takes {info.n_frames} x {info.n_mfcc} windows, the checkpoint "
                        f"{model.features.n_frames} x {model.topology.n_mfcc}")
    return info


RETRIES = 1      # a request that times out or comes back garbled is sent once more


def _print_device(where, info, progress, board_hz=None):
    """The IDENTIFY line; for the simulated board (`board_hz` given) its clock is named as the
    simulation's, next to the real board's clock that the time estimate uses."""
    clock = f"{info.clk_freq / 1e6:g} MHz"
    if board_hz is not None and board_hz != info.clk_freq:
        clock = (f"simulated at {clock} with a fast UART (time estimates use the real board's "
                 f"{board_hz / 1e6:g} MHz)")
    progress.out(f"{where}: model {info.model_id} ({info.mixer}), {info.n_frames} frames x {info.n_mfcc} MFCC, "
                 f"{info.n_classes} classes, {info.mixer_lanes} mixer / {info.dw_lanes} depthwise lanes, "
                 f"{clock}, ternkws {info.version}, protocol {info.protocol}")


def _clip_line(c):
    return (f"{c['file']}: board {c['class']:8s} golden {c['golden_class']:8s} "
            f"{'bit-exact' if c['bit_exact'] else 'MISMATCH'}  {c['cycles']:,} cycles  {c['seconds']:.2f} s")


def _classify_all(device, where, model, paths, windows, baud, board_hz, *, progress, json_mode, clips=None):
    """Classify each window; each clip's result is appended to `clips` (returned) and printed as soon as
    it is known: its line on stdout, or with json_mode a progress line on stderr."""
    import numpy as np

    from ternkws.boards.host import LinkError
    from ternkws.golden.network import forward_int
    from ternkws.golden.errors import UserError

    label = lambda k: model.labels[k] if 0 <= k < len(model.labels) else str(k)  # noqa: E731
    clips = [] if clips is None else clips
    for k, (path, xq) in enumerate(zip(paths, windows), 1):
        sent, received = device.bytes_sent, device.bytes_received
        t0 = time.monotonic()
        retried = []

        def again(error, attempt, path=path):
            retried.append(str(error))
            progress.line(f"{path}: {error}; retrying (attempt {attempt} of {RETRIES + 1})")
        try:
            with progress.ticking(f"clip {k}/{len(paths)} {path}: classifying on {where}"):
                cls, logits = device.retrying(device.classify, xq, retries=RETRIES, on_retry=again)
                seconds = time.monotonic() - t0
                wire = device.bytes_sent - sent + device.bytes_received - received
                cycles = device.retrying(device.status, retries=RETRIES, on_retry=again).cycles
        except LinkError as e:
            raise UserError(f"{path}: the link to {where} failed ({e})"
                            + (" after a retry" if retried else "")) from None
        ref = forward_int(model.topology, model.int_arrays, xq)
        golden_cls = int(np.argmax(ref))
        exact = bool(list(logits) == [int(v) for v in ref] and cls == golden_cls)
        clips.append({"file": str(path), "class": label(cls), "golden_class": label(golden_cls),
                      "bit_exact": exact, "logits": [int(v) for v in logits], "golden_logits": [int(v) for v in ref],
                      "seconds": round(seconds, 4), "wire_bytes": wire, "cycles": cycles,
                      "board_seconds": round(wire * 10 / baud + cycles / board_hz, 4)})
        if retried:
            clips[-1]["retried"] = retried
        if json_mode:
            c = clips[-1]
            progress.line(f"clip {k}/{len(paths)} {path}: {c['class']} (golden {c['golden_class']}, "
                          f"{'bit-exact' if exact else 'MISMATCH'}), {seconds:.2f} s")
        else:
            progress.out(_clip_line(clips[-1]))
    return clips


def run(args):
    from ternkws.golden.audio import read_wav
    from ternkws.golden.checkpoint import load
    from ternkws.golden.pipeline import clip_features
    from ternkws.golden.errors import UserError

    if args.sim == bool(args.port):
        raise UserError("give either --port DEV (a board; list ports with `python -m serial.tools.list_ports`) "
                        "or --sim (the simulated board)")
    if args.config is not None and not args.sim:
        raise UserError("--config applies to --sim; a board reports the configuration it was built with")
    if args.baud <= 0:
        raise UserError(f"--baud must be positive, not {args.baud}")
    if args.timeout <= 0:
        raise UserError(f"--timeout must be positive, not {args.timeout}")
    model = load(args.model)
    # Every file is read first: the bad ones are reported (and skipped) before the board is started.
    good, errors = read_each("run", args.wavs, lambda path: clip_features(
        model, read_wav(path, model.features.sample_rate))[1])
    require_some("run", good, errors)
    args.wavs = [path for path, _ in good]          # from here on: the readable clips
    windows = [xq for _, xq in good]

    from ternkws.boards.host import Device
    from ternkws.golden.progress import Progress
    progress = Progress(prefix="ternkws run: ")
    clips, info = [], None

    def failed(message):
        """With --json, the document of what was done before the link failed (stdout: the JSON alone)."""
        if args.json and info is not None:        # (before the device answered, no document)
            print(json.dumps({"target": "sim" if args.sim else args.port, "model": str(model.path),
                              "model_id": model.model_id, "device": dict(info.__dict__) if info else None,
                              "baud": args.baud, "clips": clips, "all_bit_exact": None, "errors": errors,
                              "error": message, "complete": False}, indent=1))

    if args.sim:
        from ternkws.hw.accelerator import CONFIGS, check_config
        from ternkws.sim.board_sim import BoardSim, SimulationError
        name = args.config or "up5k"
        if name not in CONFIGS:
            raise UserError(f"--config must be one of {', '.join(CONFIGS)}, not {name!r}")
        config = CONFIGS[name]
        try:
            check_config(model, config)
        except ValueError as e:
            raise UserError(f"configuration {name} does not fit model {model.path}: {e}") from None
        where = f"the simulated board ({name})"
        progress.line(f"starting {where}: Verilog, Verilator build (cached after the first run), TCP bridge...")
        board_sim = BoardSim(model, config, progress=progress)
        t0 = time.monotonic()
        try:
            with board_sim as port:
                start_seconds = time.monotonic() - t0
                device = Device(port, timeout=600, result_timeout=3600)
                info = _identify(device, where, model, args.baud, progress)
                if not args.json:
                    _print_device(where, info, progress, board_hz=BOARD_CLOCK_HZ[name])
                _classify_all(device, where, model, args.wavs, windows, args.baud, BOARD_CLOCK_HZ[name],
                              progress=progress, json_mode=args.json, clips=clips)
        except SimulationError as e:
            failed(f"{e}".splitlines()[0])
            raise UserError(f"{e}".splitlines()[0]) from None
        except UserError as e:
            failed(f"{e} (simulation log: {board_sim.log_path})")
            raise UserError(f"{e} (simulation log: {board_sim.log_path})") from None
        stats = board_sim.stats or {}
        board_hz = BOARD_CLOCK_HZ[name]
        extra = {"sim_start_seconds": round(start_seconds, 2),
                 "sim": {k: stats.get(k) for k in ("bytes_from_host", "bytes_to_host", "sim_ns")}}
    else:
        where = args.port
        port = _open_port(args.port, args.baud)
        try:
            device = Device(port, timeout=args.timeout, result_timeout=10 * args.timeout)
            info = _identify(device, where, model, args.baud, progress)
            from ternkws.golden.protocol import Mode
            if not Mode(info.modes) & Mode.WINDOW:
                raise UserError(f"{where} is a stream board (it answers STREAM_START / FRAMES / POLL, not windows): "
                                f"use ternkws listen --port {where}, or flash the window board (ternkws build "
                                f"--board BOARD)")
            if not args.json:
                _print_device(where, info, progress)
            _classify_all(device, where, model, args.wavs, windows, args.baud, info.clk_freq,
                          progress=progress, json_mode=args.json, clips=clips)
        except UserError as e:
            failed(str(e))
            raise
        finally:
            port.close()
        board_hz, extra = info.clk_freq, {}

    all_exact = all(c["bit_exact"] for c in clips)
    summary = {"target": "sim" if args.sim else args.port, "model": str(model.path), "model_id": model.model_id,
               "device": dict(info.__dict__), "baud": args.baud, "board_clock_hz": board_hz, "clips": clips,
               "all_bit_exact": all_exact, "errors": errors, **extra}
    status = EXIT_USER_ERROR if errors else (0 if all_exact else 1)
    if args.json:
        print(json.dumps(summary, indent=1))
        return status
    # the device line and each clip's line were printed as they came (_print_device, _classify_all)
    n_exact = sum(c["bit_exact"] for c in clips)
    wire = clips[0]["wire_bytes"]
    print(f"{n_exact}/{len(clips)} clips bit-exact (all logits equal). One window: {wire:,} bytes on the wire + "
          f"{clips[0]['cycles']:,} cycles = {clips[0]['board_seconds']:.3f} s on a board at {args.baud} baud and "
          f"{board_hz / 1e6:g} MHz" + (" (estimate for the real board)" if args.sim else "")
          + f", {1 / clips[0]['board_seconds']:.2f} windows/s")
    return status
