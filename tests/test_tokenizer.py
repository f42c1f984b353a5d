from scratchgpt import EOT, EOT_ID, gpt2_tokenizer, ids_to_text, read_text, text_to_ids


def test_gpt2_facts():
    tok = gpt2_tokenizer()
    assert tok.n_vocab == 50257
    assert tok.encode(EOT, allowed_special={EOT}) == [EOT_ID] == [50256]
    assert tok.encode("Hello, world") == [15496, 11, 995]
    assert len(tok.encode(read_text("the-verdict.txt"))) == 5145


def test_plain_tiktoken_works_offline_and_agrees(monkeypatch, tmp_path):
    import socket

    import tiktoken.load
    import tiktoken.registry

    from scratchgpt.tokenizer import install_tiktoken_cache

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))   # an empty cache: only what we place is there
    install_tiktoken_cache()                                  # what gpt2_tokenizer() does on first use
    text = read_text("the-verdict.txt")
    expected = gpt2_tokenizer().encode(text)

    def no_network(*args, **kwargs):
        raise AssertionError("tiktoken tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(tiktoken.load, "read_file", no_network)       # its download function
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})           # forget the encoding built in-process
    plain = tiktoken.get_encoding("gpt2")
    assert plain.encode(text) == expected


def test_tensor_round_trip():
    ids = text_to_ids("Every effort moves you<|endoftext|>")
    assert ids.tolist() == [[6109, 3626, 6100, 345, 50256]]
    assert ids.shape == (1, 5) and ids[0, -1].item() == EOT_ID
    assert ids_to_text(ids) == "Every effort moves you<|endoftext|>"


def test_a_damaged_copy_in_tiktokens_cache_is_replaced_not_used(monkeypatch, tmp_path):
    """tiktoken caches the files it reads under the sha1 of their path, and would read a truncated or
    edited copy there without a check (JSONDecodeError, or a bare AssertionError): our files go in with
    their sha256, so a damaged copy is dropped and the verified file read instead."""
    import hashlib

    from scratchgpt import tokenizer
    from scratchgpt.data import fetch, sha256_of

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    encoder, vocab = fetch("encoder.json"), fetch("vocab.bpe")
    for source, damage in [(encoder, encoder.read_bytes()[:1000]),                    # truncated
                           (vocab, vocab.read_bytes().replace(b"\nh e", b"\ne h", 1))]:  # edited
        (tmp_path / hashlib.sha1(str(source).encode()).hexdigest()).write_bytes(damage)
    tokenizer.gpt2_tokenizer.cache_clear()
    try:
        tok = tokenizer.gpt2_tokenizer()
    finally:
        tokenizer.gpt2_tokenizer.cache_clear()          # the next test builds it with the usual cache
    assert tok.encode("Hello, world") == [15496, 11, 995]
    for source in (encoder, vocab):
        copy = tmp_path / hashlib.sha1(str(source).encode()).hexdigest()
        assert sha256_of(copy) == sha256_of(source)                 # replaced by the verified file
    url_copies = [tmp_path / hashlib.sha1(url.encode()).hexdigest()
                  for url in tokenizer._TIKTOKEN_SOURCES.values()]
    assert all(sha256_of(c) in (sha256_of(encoder), sha256_of(vocab)) for c in url_copies)


def test_a_damaged_copy_under_tiktokens_own_key_is_replaced(monkeypatch, tmp_path):
    """The copies placed for a plain `tiktoken.get_encoding("gpt2")` are checked and rewritten too."""
    import hashlib

    from scratchgpt.data import fetch, sha256_of
    from scratchgpt.tokenizer import _TIKTOKEN_SOURCES, install_tiktoken_cache

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    placed = tmp_path / hashlib.sha1(_TIKTOKEN_SOURCES["encoder.json"].encode()).hexdigest()
    placed.write_bytes(b'{"truncated')
    install_tiktoken_cache()
    assert sha256_of(placed) == sha256_of(fetch("encoder.json"))
