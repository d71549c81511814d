"""The PyTorch pretraining runner: BERT with MLM + NSP heads, LAMB, AMP, exact resume, DDP.

Never imports Apache Beam or the ``pipeline`` package.
"""
