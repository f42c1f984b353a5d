"""The chat page in a real headless browser (the system's Chromium, driven by Selenium), as a person uses
it: type a message, watch the answer arrive token by token, get the engine's answer, stop an answer,
read why a request was refused. `.ci/run` installs Chromium and its driver; without them the test is
skipped here, and fails under CI."""

import os
import shutil

import pytest
import torch
from test_chat import Slow

from scratchgpt import GPTConfig, gpt2_tokenizer
from scratchgpt.chat import ChatSession
from scratchgpt.model import GPT
from scratchgpt.tools.chat_web import create_app, running

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Chromium and its driver: .ci/run installs chromium and chromium-driver")
    pytest.skip("no Chromium and chromedriver here (apt-get install chromium chromium-driver)",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def browser() -> webdriver.Chrome:
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=900,700"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


# what the page showed of the newest answer, at every change of it: (its state, its text)
WATCH = """
window.seen = [];
const log = document.getElementById("log");
new MutationObserver(() => {
  const answers = log.querySelectorAll(".assistant");
  const b = answers[answers.length - 1];
  if (b) window.seen.push([b.dataset.state, answerText(b)]);
}).observe(log, {subtree: true, childList: true, characterData: true, attributes: true});
window.answerText = (b) => Array.from(b.childNodes).filter((n) => n.nodeType === 3).map((n) => n.textContent)
                                .join("");
"""


@pytest.mark.slow
def test_the_page_streams_the_answer_and_shows_the_engines_text():
    torch.manual_seed(1)
    model = GPT(GPTConfig(context_length=128, n_embd=32, n_layer=2, n_head=2, dropout=0.0)).eval()
    tok = gpt2_tokenizer()
    chat = ChatSession(Slow(model, 0.03), tok, temperature=0.8, top_k=40, max_new_tokens=30)
    with running(create_app(chat, "a test model")) as url:
        driver = browser()
        try:
            driver.get(url)
            wait = WebDriverWait(driver, 20)
            wait.until(lambda d: d.execute_script("return document.body.dataset.ready === 'yes'"))
            assert driver.find_element(By.ID, "model").text == "a test model"
            seed = driver.find_element(By.ID, "seed")
            seed.clear()
            seed.send_keys("5")
            driver.execute_script(WATCH)

            box = driver.find_element(By.ID, "message")
            box.send_keys("Name a color.")
            box.send_keys(Keys.ENTER)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".assistant[data-state='done']"))
            final = driver.execute_script("return answerText(document.querySelector('.assistant'))")
            seen = driver.execute_script("return window.seen")

            engine = ChatSession(model, tok, temperature=0.8, top_k=40, max_new_tokens=30, seed=5)
            assert final == "".join(engine.stream("Name a color."))
            # tokens arrived before the answer was complete: a growing part of it showed while streaming
            partial = [text for state, text in seen if state == "streaming" and text]
            assert all(final.startswith(t) for t in partial)
            assert len({t for t in partial if len(t) < len(final)}) > 3
            assert driver.find_element(By.CSS_SELECTOR, ".user").text == "Name a color."

            # Stop ends an answer half-way; the page is ready for the next message
            max_tokens = driver.find_element(By.ID, "max_new_tokens")
            max_tokens.clear()
            max_tokens.send_keys("100")
            box.send_keys("Tell me more.", Keys.ENTER)
            wait.until(lambda d: d.execute_script("const a = document.querySelectorAll('.assistant'); "
                                                  "return a.length === 2 && a[1].textContent"))
            driver.find_element(By.ID, "stop").click()
            done = ".assistant[data-state='done']"
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, done)) == 2)
            stopped = driver.execute_script("return answerText(document.querySelectorAll('.assistant')[1])")
            again = ChatSession(model, tok, temperature=0.8, top_k=40, max_new_tokens=100, seed=5,
                                turns=[("Name a color.", final)])
            assert stopped and len(stopped) < len("".join(again.stream("Tell me more.")))
            assert driver.find_element(By.ID, "send").is_enabled()

            # a refused request says why, in the page
            temperature = driver.find_element(By.ID, "temperature")
            temperature.clear()
            temperature.send_keys("5")
            box.send_keys("Hot?", Keys.ENTER)
            error = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".error"))
            assert "temperature must be at least 0 and at most 2.0" in error[0].text
        finally:
            driver.quit()
