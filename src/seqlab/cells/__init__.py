"""Reference cells: one time step of each recurrent cell, in plain torch (the oracle for every fast path)."""

from seqlab.cells.base import CellBase
from seqlab.cells.gru import RESET_VARIANTS, GRUCell, gru_step, init_update_gate
from seqlab.cells.lstm import FORGET_INIT_HELP, LSTMCell, init_forget_gate, lstm_step, parse_forget_init
from seqlab.cells.rnn import RNNCell, rnn_step

__all__ = [
    "CellBase",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "rnn_step",
    "lstm_step",
    "gru_step",
    "RESET_VARIANTS",
    "FORGET_INIT_HELP",
    "init_forget_gate",
    "init_update_gate",
    "parse_forget_init",
]
