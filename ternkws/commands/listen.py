"""`ternkws listen`: keyword detections in audio of any length (WAV files or a live microphone), from the
golden streaming model (golden/streaming.py, golden/SPEC.md section 6), the simulated stream board
(--sim) or a stream board on a serial port (--port); both boards speak the version-2 protocol
(boards/PROTOCOL.md, "Streaming": STREAM_START, pipelined FRAMES, POLL) through boards/host.py Device.

    ternkws listen [--golden | --sim | --port DEV [--baud B]] [--model M] [--json] (WAV... | --mic [--seconds S])

The host always computes the features (golden.streaming.FeatureStream: frame t = samples [160t,
160t + 400)); the *engine* of the chosen source turns int8 feature frames into decisions and events
(golden.streaming.GoldenEngine's interface: push(frames) -> (Decisions, [Event]), reset(), delay, hop,
n_frames, n_classes). SOURCES maps each source to the function that opens its engine, so a device
engine plugs in without touching the rest. Each detection is printed as soon as it is found, with its
time (seconds from the start of the audio, when the decision is known) and score (the margin in logit
units per decision); a summary follows.
"""

import json
import sys

from ternkws.golden.errors import UserError

from ._common import EXIT_USER_ERROR, add_model_option, error_line, summarize_bad

EXAMPLES = """
ternkws listen golden/samples/yes.wav
ternkws listen --golden --json --threshold 3 recording.wav
ternkws listen --mic --seconds 30
"""

CHUNK_SECONDS = 1.0     # audio pushed per step when reading a file (detections print as they come)
MIC_BLOCK_SECONDS = 0.1


def configure(parser):
    from ternkws.golden import streaming as st
    parser.add_argument("wavs", nargs="*", metavar="WAV",
                        help="16 kHz mono WAV files of any length, 8-32-bit PCM or float (a bad one is reported "
                             "and skipped; exit status 2 at the end)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--golden", action="store_true",
                        help="the golden streaming model (the default)")
    source.add_argument("--sim", action="store_true",
                        help="the simulated stream board (BoardTop mode stream: UART, host link and the streaming "
                             "accelerator) in Verilator, over the same protocol as a board; the first run builds it "
                             "(minutes; cached). $TERNKWS_STREAM_SIM=amaranth: the board's core in the Amaranth "
                             "simulator instead (no UART; slow on the full model)")
    source.add_argument("--port", metavar="DEV",
                        help="a stream board on a serial port (built with ternkws build --mode stream), e.g. "
                             "/dev/ttyUSB1")
    parser.add_argument("--baud", type=int, default=None, metavar="B",
                        help="--port: the UART rate the board was built for (default 1000000, the stream board's)")
    parser.add_argument("--mic", action="store_true",
                        help="listen to the default input device (needs the sounddevice package and PortAudio); "
                             "Ctrl-C stops (exit status 130 after the summary)")
    parser.add_argument("--seconds", type=float, default=None, metavar="S", help="--mic: stop after S seconds")
    add_model_option(parser)
    parser.add_argument("--threshold", type=float, default=st.DEFAULT_THRESHOLD, metavar="X",
                        help=f"margin threshold in logit units per decision (default {st.DEFAULT_THRESHOLD:g}; "
                             f"higher: fewer false alarms, more misses)")
    parser.add_argument("--smooth", type=int, default=st.DEFAULT_SMOOTH, metavar="N",
                        help=f"decisions summed into the score, 1-{st.SMOOTH_MAX} (default {st.DEFAULT_SMOOTH})")
    parser.add_argument("--refractory", type=int, default=st.DEFAULT_REFRACTORY, metavar="R",
                        help=f"decisions after a detection during which none fires (default {st.DEFAULT_REFRACTORY})")
    parser.add_argument("--hop", type=int, default=st.DEFAULT_HOP, metavar="H",
                        help=f"frames between decisions, 10 ms each (default {st.DEFAULT_HOP})")
    parser.add_argument("--decisions", action="store_true",
                        help="also print every decision (its class and top logit; with --json every logit, under "
                             "\"decisions\")")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout at the end (refused files carry an \"error\")")


# --- sources ---------------------------------------------------------------------------------------------

def _golden_engine(args, model, detector):
    from ternkws.golden.streaming import GoldenEngine
    return GoldenEngine(model, detector, args.hop)


def _sim_engine(args, model, detector):
    """The stream board simulated: BoardTop(mode="stream") in Verilator behind the TCP bridge (a serial
    port on localhost), or with $TERNKWS_STREAM_SIM=amaranth its core in the Amaranth simulator; either way
    the host speaks the protocol to it (boards/stream_engine.py DeviceEngine)."""
    import atexit

    from ternkws.boards.host import Device
    from ternkws.golden.progress import Progress
    from ternkws.sim.board_sim import SimulationError
    from ternkws.sim.streaming_engine import choose_simulator, fit_config

    progress = None if args.json else Progress(sys.stderr)
    config = fit_config(model)
    try:
        simulator = choose_simulator()
    except ValueError as e:
        raise UserError(f"--sim: {e}") from None
    try:
        if simulator == "verilator":
            from ternkws.sim.board_sim import BoardSim
            board = BoardSim(model, config, mode="stream", progress=progress)
            port, stop = board.__enter__(), lambda: board.__exit__(None, None, None)
        else:
            from ternkws.hw.board_core import StreamBoardCore
            from ternkws.sim.board_sim import DEFAULT_CLOCKS_PER_BIT, DEFAULT_TIMEOUT_CYCLES, SIM_CLOCK_HZ
            from ternkws.sim.stream_board_pysim import PysimBoardPort
            core = StreamBoardCore(model, config, SIM_CLOCK_HZ, SIM_CLOCK_HZ // DEFAULT_CLOCKS_PER_BIT,
                                   timeout=DEFAULT_TIMEOUT_CYCLES / SIM_CLOCK_HZ)
            sim = PysimBoardPort(core, byte_cycles=8)       # byte streams: no UART, a byte every 8 cycles
            port, stop = sim.__enter__(), lambda: sim.__exit__(None, None, None)
    except ValueError as e:
        raise UserError(f"--sim: {e}") from None
    except SimulationError as e:
        raise UserError(f"--sim: {str(e).splitlines()[0]}") from None
    atexit.register(stop)
    device = Device(port, timeout=120, result_timeout=600)
    return _board_engine(device, model, detector, args, "the simulated stream board", f"rtl ({simulator}, board)", stop)


def _port_engine(args, model, detector):
    from ternkws.boards.host import Device
    from ternkws.boards.platforms import STREAM_BAUD

    from .run import _open_port
    baud = args.baud or STREAM_BAUD
    port = _open_port(args.port, baud)
    device = Device(port, timeout=2.0, result_timeout=10.0)
    return _board_engine(device, model, detector, args, args.port, "board", port.close, baud)


def _board_engine(device, model, detector, args, where, name, stop, baud=None):
    """DeviceEngine after IDENTIFY checked the board (protocol, model, stream mode)."""
    from ternkws.boards.host import LinkError
    from ternkws.boards.stream_engine import DeviceEngine

    from .run import _identify
    try:
        info = _identify(device, where, model, baud or "its")
        if not info.streams:
            raise UserError(f"{where} is a window board (it answers FEATURES / RUN / RESULT, not the streaming "
                            f"commands): build and flash the stream board (ternkws build --board BOARD --mode stream) "
                            f"or use ternkws run for windows")
        if info.n_classes != model.topology.n_classes:
            raise UserError(f"{where} has {info.n_classes} classes, the checkpoint {model.topology.n_classes}")
        return DeviceEngine(device, model, detector, args.hop, name=name, on_close=stop)
    except ValueError as e:
        stop()
        raise UserError(f"--{'sim' if args.sim else 'port'}: {e}") from None
    except (UserError, LinkError):
        stop()
        raise


SOURCES = {"golden": _golden_engine, "sim": _sim_engine, "port": _port_engine}
SOURCE_NAMES = {"golden": "golden streaming model", "sim": "simulated board", "port": "board"}


def _link_errors(call):
    """`call()` with a link failure while streaming turned into one sentence."""
    from ternkws.boards.host import LinkError
    try:
        return call()
    except LinkError as e:
        raise UserError(f"the stream board stopped answering properly: {e}") from None


def source_of(args):
    return "sim" if getattr(args, "sim", False) else "port" if getattr(args, "port", None) else "golden"


def detector_of(args, model):
    from ternkws.golden.streaming import SMOOTH_MAX, detector_config
    if args.hop < 1:
        raise UserError(f"--hop must be at least 1, not {args.hop}")
    if not 1 <= args.smooth <= SMOOTH_MAX:
        raise UserError(f"--smooth must be in [1, {SMOOTH_MAX}], not {args.smooth}")
    if args.refractory < 1:
        raise UserError(f"--refractory must be at least 1, not {args.refractory}")
    return detector_config(model, args.threshold, args.smooth, args.refractory)


def settings(model, engine, detector, source):
    f = model.features
    return {"source": source, "hop": engine.hop, "hop_s": engine.hop * f.hop_length / f.sample_rate,
            "delay_frames": engine.delay, "delay_s": engine.delay * f.hop_length / f.sample_rate,
            "window_frames": engine.n_frames, "smooth": detector.smooth, "refractory": detector.refractory,
            "threshold_int": detector.threshold, "keywords": [model.labels[i] for i in detector.keywords]}


# --- running -----------------------------------------------------------------------------------------------

def detection_line(name, det):
    return (f"{name}: {det.time:8.2f} s  {det.label:8s} score {det.score:6.2f}  "
            f"(audio {det.window[0]:.2f}-{det.window[1]:.2f} s)")


def decision_lines(name, listener, decisions):
    out = []
    for k, ready, lg in zip(decisions.index, decisions.ready, decisions.logits):
        c = int(lg.argmax())
        out.append(f"{name}: decision {int(k):5d} at {listener.frame_end(int(ready)):8.2f} s: "
                   f"{listener.model.labels[c]:8s} logit {int(lg[c])}")
    return out


def listen_samples(listener, samples, on_detection=None, on_decisions=None, chunk_seconds=CHUNK_SECONDS):
    """Stream `samples` through `listener` in chunks, then its tail; calls back as results come."""
    step = max(1, int(chunk_seconds * listener.model.features.sample_rate))
    blocks = [samples[a:a + step] for a in range(0, len(samples), step)] + [listener.tail_samples()]
    for block in blocks:
        n_before = len(listener._decisions)
        for det in listener.push(block):
            if on_detection:
                on_detection(det)
        if on_decisions and len(listener._decisions) > n_before:
            on_decisions(listener._decisions[-1])
    return listener.detections


def summary_text(dets):
    if not dets:
        return "no keyword detected"
    counts = {}
    for d in dets:
        counts[d.label] = counts.get(d.label, 0) + 1
    return (f"{len(dets)} detection(s): " + ", ".join(f"{k} x{v}" if v > 1 else k for k, v in counts.items()))


def decisions_json(listener):
    d = listener.decisions
    return [{"decision": int(k), "time_s": round(listener.frame_end(int(r)), 3), "class": listener.model.labels[int(c)],
             "logits": [int(v) for v in lg]} for k, r, c, lg in zip(d.index, d.ready, d.cls, d.logits)]


def _mic_blocks(rate, seconds):
    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:
        why = "the sounddevice package is not installed" if isinstance(e, ImportError) else f"sounddevice: {e}"
        raise UserError(f"--mic: {why}; install it and PortAudio (pip install sounddevice; Debian: apt-get "
                        f"install libportaudio2), or give WAV files") from None
    try:
        sd.query_devices(kind="input")
        stream = sd.InputStream(samplerate=rate, channels=1, dtype="float32",
                                blocksize=int(MIC_BLOCK_SECONDS * rate))
    except Exception as e:          # PortAudioError, ValueError: no device, no 16 kHz mono input
        raise UserError(f"--mic: no usable audio input device ({e}); plug in a microphone or give WAV files") from None
    block = int(MIC_BLOCK_SECONDS * rate)
    total = None if seconds is None else int(seconds * rate)
    done = 0
    with stream:
        while total is None or done < total:
            data, _ = stream.read(block if total is None else min(block, total - done))
            done += len(data)
            yield data[:, 0].copy()


def run(args):
    from ternkws.golden.audio import read_wav
    from ternkws.golden.checkpoint import load
    from ternkws.golden.streaming import Listener

    from .infer import describe

    if args.mic and args.wavs:
        raise UserError("give WAV files or --mic, not both")
    if not args.mic and not args.wavs:
        raise UserError("give WAV files to listen to, or --mic for the microphone")
    if args.seconds is not None and not args.mic:
        raise UserError("--seconds goes with --mic (a file is listened to whole)")
    if args.seconds is not None and args.seconds <= 0:
        raise UserError(f"--seconds must be positive, not {args.seconds}")
    if args.baud is not None and not args.port:
        raise UserError("--baud goes with --port (the serial port's rate)")
    source = source_of(args)
    model = load(args.model)
    detector = detector_of(args, model)
    engine = SOURCES[source](args, model, detector)
    info = settings(model, engine, detector, source)
    listener = Listener(model, engine, record=args.decisions)
    rate = model.features.sample_rate
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else (lambda line: print(line, flush=True))
    if not args.json:
        print(describe(model))
        print(f"listening with the {SOURCE_NAMES[source]}: a decision every {info['hop_s'] * 1000:.0f} ms over "
              f"{model.features.n_samples / rate:.3f} s of audio, known "
              f"{info['delay_s']:.2f} s after its end; threshold {args.threshold:g} over {detector.smooth} decisions, "
              f"refractory {detector.refractory}", flush=True)
    results, failed = [], 0

    def one(name, samples_or_blocks, seconds_of):
        listener.reset()
        on_det = None if args.json else (lambda d: say(detection_line(name, d)))
        on_dec = (lambda d: [say(x) for x in decision_lines(name, listener, d)]) if args.decisions and not args.json else None
        interrupted = False
        if isinstance(samples_or_blocks, list):
            listen_samples(listener, samples_or_blocks[0], on_det, on_dec)
        else:
            try:
                for block in samples_or_blocks:
                    n_before = len(listener._decisions)
                    for d in listener.push(block):
                        on_det and on_det(d)
                    if on_dec and len(listener._decisions) > n_before:
                        on_dec(listener._decisions[-1])
            except KeyboardInterrupt:
                interrupted = True
            heard[0] = listener.features.samples
            for d in listener.finish():
                on_det and on_det(d)
        entry = {"file": name, "seconds": round(seconds_of(), 3),
                 "detections": [d.to_dict() for d in listener.detections]}
        if args.decisions:
            entry["decisions"] = decisions_json(listener)
        results.append(entry)
        if not args.json:
            print(f"{name}: {entry['seconds']:.1f} s of audio: {summary_text(listener.detections)}", flush=True)
        return interrupted

    interrupted = False
    heard = [0]                     # samples taken from the microphone (before the tail)
    if args.mic:
        blocks = _mic_blocks(rate, args.seconds)
        say("listening to the microphone" + (f" for {args.seconds:g} s" if args.seconds else "; Ctrl-C stops"))
        interrupted = _link_errors(lambda: one("mic", blocks, lambda: heard[0] / rate))
    else:
        for path in args.wavs:
            try:
                x = read_wav(path, rate)
            except UserError as e:
                failed += 1
                results.append({"file": path, "error": str(e)})
                error_line("listen", e)
                continue
            _link_errors(lambda path=path, x=x: one(path, [x], lambda: len(x) / rate))
    good = [r for r in results if "error" not in r]
    if args.json:
        print(json.dumps({"model": str(model.path), "model_id": model.model_id, "trained": model.trained,
                          "settings": info | {"threshold": args.threshold}, "files": results}, indent=1))
    elif len(good) > 1:
        total = sum(r["seconds"] for r in good)
        n = sum(len(r["detections"]) for r in good)
        print(f"{len(good)} file(s), {total:.1f} s of audio: {n} detection(s)"
              + (f", {failed} failed" if failed else ""))
    summarize_bad("listen", [r for r in results if "error" in r], len(args.wavs))
    if interrupted:
        raise KeyboardInterrupt
    return EXIT_USER_ERROR if failed else 0
