"""AR-to-diffusion (A2D): converting the default autoregressive model into a block-diffusion one.

One module per concern: `data` (self-distilled training data from the base model's own greedy
answers), `objective` (the block-diffusion loss on packed noisy/clean copies), `trainer` (the fit
loop that checkpoints and resumes), `adapter` (the LoRA adapter file: save, check, merge) and
`evaluate` (tokens per forward, NLL under the base, agreement with AR greedy).
"""
