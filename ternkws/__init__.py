"""ternkws: keyword spotting on FPGAs with LFSR-generated sparse random ternary 1x1 convolutions."""

__version__ = "0.1.0"
