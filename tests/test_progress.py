"""Progress bars: a finished bar's saved text says it finished; outside a notebook, tqdm's text bar."""

import nbformat
from nbclient import NotebookClient
from tqdm.std import tqdm as text_tqdm

from scratchgpt.progress import progress_bar


def test_outside_a_notebook_it_is_a_text_bar(capsys):
    bar = progress_bar(total=3, desc="training")
    assert type(bar) is text_tqdm
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert "training: 100%" in capsys.readouterr().err


def test_in_a_notebook_the_saved_text_is_the_final_count(tmp_path):
    cells = [("from scratchgpt.progress import progress_bar\n"
              "bar = progress_bar(total=5, desc='training')\n"
              "for _ in range(5):\n    bar.update(1)\nbar.close()"),
             "bar = progress_bar(total=4, desc='stopped early')\nbar.update(1)\nbar.close()"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    done, stopped = ([o for o in cell.outputs if o.output_type == "display_data"] for cell in nb.cells)
    assert len(done) == 1 and "application/vnd.jupyter.widget-view+json" in done[0].data   # the live widget
    # what a saved copy shows
    assert done[0].data["text/plain"] == "[progress] training: 5/5 done"
    assert stopped[0].data["text/plain"] == "[progress] stopped early: 1/4"
