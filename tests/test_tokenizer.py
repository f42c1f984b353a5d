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
