"""spherepde: the mean-field PDE of self-attention dynamics on S² and S¹."""

__version__ = "0.1.0"
