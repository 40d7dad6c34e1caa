"""Reference cells: one time step of each recurrent cell, in plain torch (the oracle for every fast path)."""

from seqlab.cells.base import CellBase
from seqlab.cells.gru import RESET_VARIANTS, GRUCell, gru_step, gru_values, init_update_gate
from seqlab.cells.lstm import LSTMCell, init_forget_gate, lstm_step, lstm_values, parse_forget_init
from seqlab.cells.rnn import RNNCell, rnn_step

# what each cell's ``*_values`` returns (the quantities a reader can look at), in order
CELL_VALUES = {"rnn": ("h",), "lstm": ("i", "f", "o", "g", "c", "h"), "gru": ("r", "z", "n", "h")}
# gates per cell, G = NUM_GATES[cell] * H rows of the packed weights: the one place every copy of the cells
# (kernels, the explore page's size estimate) reads it from; each cell class declares its own
NUM_GATES = {"rnn": RNNCell.num_gates, "lstm": LSTMCell.num_gates, "gru": GRUCell.num_gates}

__all__ = [
    "CellBase",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "rnn_step",
    "lstm_step",
    "gru_step",
    "lstm_values",
    "gru_values",
    "CELL_VALUES",
    "NUM_GATES",
    "RESET_VARIANTS",
    "init_forget_gate",
    "init_update_gate",
    "parse_forget_init",
]
