"""BPE from scratch: round trips, training, and equality with tiktoken's GPT-2 encoding."""

from pathlib import Path

import pytest

from scratchgpt import gpt2_tokenizer, read_text
from scratchgpt.bpe import EOT, BPETokenizer, bytes_to_unicode
from scratchgpt.paths import REPO_ROOT

SEED_DIR = REPO_ROOT.parent / "shared" / "seed"


@pytest.fixture(scope="module")
def ours():
    return BPETokenizer.from_gpt2()


def test_bytes_to_unicode_is_gpt2s_map():
    m = bytes_to_unicode()
    assert len(set(m.values())) == 256 and m[ord(" ")] == "Ġ" and m[ord("\n")] == "Ċ" and m[ord("A")] == "A"


def test_equals_tiktoken_on_every_line_of_the_verdict(ours):
    tik = gpt2_tokenizer()
    text = read_text("the-verdict.txt")
    for line in text.splitlines(keepends=True):
        assert ours.encode(line) == tik.encode(line), line
    assert ours.encode(text) == tik.encode(text)


def test_equals_tiktoken_on_tinyshakespeare(ours):
    text = read_text("tinyshakespeare.txt")
    ids = ours.encode(text)
    assert ids == gpt2_tokenizer().encode(text) and len(ids) == 338025
    assert ours.decode(ids) == text


# A Korean text of this test's own (the seed notes lie beside the repository only on the project's
# machines): multi-byte UTF-8 that GPT-2's byte-level BPE splits inside characters.
KOREAN = """대규모 언어 모델(LLM)은 많은 양의 텍스트 데이터로 훈련된 심층 신경망입니다.
사전 훈련 단계에서 모델은 다음 단어를 예측하며 말뭉치의 패턴을 배우고, 미세 튜닝 단계에서는
레이블이 있는 작은 데이터셋으로 특정 작업(예: 스팸 분류, 지시 따르기)에 맞춰집니다.
트랜스포머의 셀프 어텐션은 시퀀스의 각 위치가 다른 모든 위치를 참고하게 합니다 \
— 2017년 논문 "Attention Is All You Need".
GPT-3는 1,750억 개의 파라미터를 가졌고, 퓨샷(few-shot) 학습과 창발적 능력으로 주목받았습니다!
"""


def test_equals_tiktoken_on_korean_text(ours):
    # seed notes too, where present
    texts = [KOREAN] + [p.read_text(encoding="utf-8") for p in sorted(SEED_DIR.glob("*.txt"))]
    tik = gpt2_tokenizer()
    for text in texts:
        ids = ours.encode(text)
        assert ids == tik.encode(text)
        assert ours.decode(ids) == text
    assert len(tik.encode(KOREAN)) > 2 * len(KOREAN.split())   # it really does split inside words


def test_special_tokens(ours):
    tik = gpt2_tokenizer()
    text = "Hello<|endoftext|> world<|endoftext|>"
    assert ours.encode(text, allowed_special={EOT}) == tik.encode(text, allowed_special={EOT})
    with pytest.raises(ValueError, match="special token"):
        ours.encode(text)


@pytest.mark.parametrize("text", ["", " ", "hello world", "naïve café 🙂", "대규모 언어 모델",
                                  "a\n\n  b\t'll've"])
def test_round_trips(ours, text):
    assert ours.decode(ours.encode(text)) == text


def test_training_learns_frequent_pairs_first():
    tok = BPETokenizer.train("aaab aaab aaab cd", vocab_size=256 + 2 + 1)
    # words: 'aaab' once, ' aaab' twice, ' cd' once; 'aa' occurs twice per word: 6 times in all,
    # ahead of 'ab' (3) and ' a' (2), so it is merged first
    assert tok.vocab[256] == b"aa"
    assert tok.special_tokens == {EOT: 258} and tok.n_vocab == 259
    for text in ["aaab cd", "unseen words too"]:
        assert tok.decode(tok.encode(text)) == text


def test_training_is_deterministic_and_compresses():
    text = read_text("the-verdict.txt")
    a, b = BPETokenizer.train(text, 400), BPETokenizer.train(text, 400)
    assert a.merges == b.merges
    assert len(a.encode(text)) < 0.6 * len(text.encode())


def test_too_small_vocabulary_is_an_error():
    with pytest.raises(ValueError, match="at least 257"):
        BPETokenizer.train("abc", 200)


def test_loads_explicit_paths(tmp_path):
    from scratchgpt import fetch

    tok = BPETokenizer.from_gpt2(Path(fetch("vocab.bpe")), Path(fetch("encoder.json")))
    assert tok.n_vocab == 50257 and tok.encode("Hello, world") == [15496, 11, 995]
