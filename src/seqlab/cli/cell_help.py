"""Help texts of the cell options (``--forget-init``): the interface's words for what ``seqlab.cells`` does.

The cells parse and apply the value (``seqlab.cells.parse_forget_init``, ``init_forget_gate``); how a user
spells it on the command line is said here, on the CLI's side of the layers."""

FORGET_INIT_HELP = (
    'forget-gate bias at initialisation: "zero" (torch.nn\'s default, b_f ~ U(-1/sqrt(H), 1/sqrt(H)) twice, mean 0), '
    'a number such as "1" (b_f = 1, Gers et al. 2000; Jozefowicz et al. 2015) or "chrono:T_MAX" '
    "(b_f ~ log U(1, T_MAX - 1), b_i = -b_f; Tallec & Ollivier 2018)"
)
