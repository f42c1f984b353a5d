import tiktoken
from scratchgpt import EOT, EOT_ID, gpt2_tokenizer, ids_to_text, read_text, text_to_ids


def test_gpt2_facts():
    tok = gpt2_tokenizer()
    assert tok.n_vocab == 50257
    assert tok.encode(EOT, allowed_special={EOT}) == [EOT_ID] == [50256]
    assert tok.encode("Hello, world") == [15496, 11, 995]
    assert len(tok.encode(read_text("the-verdict.txt"))) == 5145


def test_plain_tiktoken_works_offline_and_agrees():
    gpt2_tokenizer()  # places the files in tiktoken's cache
    plain = tiktoken.get_encoding("gpt2")
    text = read_text("the-verdict.txt")
    assert plain.encode(text) == gpt2_tokenizer().encode(text)


def test_tensor_round_trip():
    ids = text_to_ids("Every effort moves you<|endoftext|>")
    assert ids.tolist() == [[6109, 3626, 6100, 345, 50256]]
    assert ids.shape == (1, 5) and ids[0, -1].item() == EOT_ID
    assert ids_to_text(ids) == "Every effort moves you<|endoftext|>"
