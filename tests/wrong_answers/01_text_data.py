"""Plausible wrong answers to the exercises of 01_text_data: each must run, and its check must fail."""

WRONG = {
    "ex01_1_solution": [
        # stripped the spaces off each piece
        """
ids = tokenizer.encode("Akwirw ier")
pieces = [tokenizer.decode([i]).strip() for i in ids]
""",
        # split the text into words instead of decoding each id
        """
ids = tokenizer.encode("Akwirw ier")
pieces = "Akwirw ier".split()
""",
        # encoded the words without the space between them
        """
ids = tokenizer.encode("Akwirwier")
pieces = [tokenizer.decode([i]) for i in ids]
""",
    ],
    "ex01_2_solution": [
        # forgot to fill the dict
        """
n_windows = {}
loader = create_dataloader(text, batch_size=4, max_length=8, stride=2, shuffle=False)
x8, y8 = next(iter(loader))
""",
        # counted batches, not windows
        """
n_windows = {}
for max_length, stride in [(2, 2), (8, 2)]:
    loader = create_dataloader(text, batch_size=4, max_length=max_length, stride=stride, shuffle=False)
    n_windows[(max_length, stride)] = len(loader)
x8, y8 = next(iter(loader))
""",
        # the formula by hand, off by one
        """
N = len(scratchgpt.gpt2_tokenizer().encode(text))
n_windows = {(m, s): (N - m) // s for m, s in [(2, 2), (8, 2)]}
loader = create_dataloader(text, batch_size=4, max_length=8, stride=2, shuffle=False)
x8, y8 = next(iter(loader))
""",
        # the batch of the other loader
        """
n_windows = {}
for max_length, stride in [(8, 2), (2, 2)]:
    loader = create_dataloader(text, batch_size=4, max_length=max_length, stride=stride, shuffle=False)
    n_windows[(max_length, stride)] = len(loader.dataset)
x8, y8 = next(iter(loader))
""",
    ],
    "ex01_3_solution": [
        # hard-coded counts
        """
bpe = {size: BPETokenizer.train(text, vocab_size=size) for size in (300, 350)}
counts = {300: 2, 350: 1}
""",
        # the size of the vocabulary, not the number of tokens of the text
        """
bpe = {size: BPETokenizer.train(text, vocab_size=size) for size in (300, 350)}
counts = {size: len(tok.vocab) for size, tok in bpe.items()}
""",
        # the number of different tokens used, not the length of the encoding
        """
bpe = {size: BPETokenizer.train(text, vocab_size=size) for size in (300, 350)}
counts = {size: len(set(tok.encode(text))) for size, tok in bpe.items()}
""",
        # left room for <|endoftext|> twice: one token short
        """
bpe = {size: BPETokenizer.train(text, vocab_size=size - 1) for size in (300, 350)}
counts = {size: len(tok.encode(text)) for size, tok in bpe.items()}
""",
    ],
    "ex01_4_solution": [
        # forgot the position table
        """
tok_emb = torch.nn.Embedding(50257, 768)
pos_emb = torch.nn.Embedding(1024, 768)
n_embedding_params = tok_emb.weight.numel()
""",
        # the rows, not the numbers
        """
tok_emb = torch.nn.Embedding(50257, 768)
pos_emb = torch.nn.Embedding(1024, 768)
n_embedding_params = tok_emb.num_embeddings + pos_emb.num_embeddings
""",
        # one row per position, but forgot that each row holds 768 numbers
        """
tok_emb = torch.nn.Embedding(50257, 768)
pos_emb = torch.nn.Embedding(1024, 768)
n_embedding_params = 50257 * 768 + 1024
""",
        # the tables the wrong way round
        """
tok_emb = torch.nn.Embedding(768, 50257)
pos_emb = torch.nn.Embedding(768, 1024)
n_embedding_params = sum(p.numel() for p in [*tok_emb.parameters(), *pos_emb.parameters()])
""",
    ],
}
