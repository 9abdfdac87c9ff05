"""A layout checker evaluated in the page (`page.evaluate(LAYOUT_CHECK)`): the defects a reader sees at a
given window size, as a list of {kind, where, detail} (empty: none).

* `page-scroll`: the page scrolls sideways (document.scrollingElement.scrollWidth > clientWidth + 1). A
  table inside its own scroll box (the leaderboard's) does not count: only the page's scroll is measured.
* `overlap`: two visible pieces of text in the header, navigation or a form whose boxes intersect (each
  text node's line boxes, from a Range, so a wide block holding short text is not a false hit).
* `cut-off`: an element with overflow hidden/clip whose content is wider than its box (scrollWidth >
  clientWidth + 1) while it holds text: the text is cut off.

tests/site/test_layout_browser.py runs it on every main page, and on a page with each defect."""

from pathlib import Path

LAYOUT_CHECK = (Path(__file__).parent / "layout_check.js").read_text()

#: A page with each defect (and text that must not count: a scrolled table, a block holding short text).
DEFECTS_PAGE = """<!doctype html><html><head><style>
  body { margin: 0; font: 16px sans-serif; }
  nav { position: relative; height: 40px; }
  nav a { position: absolute; top: 10px; }
  #wide { width: 3000px; height: 10px; }
  #cut { width: 60px; overflow: hidden; white-space: nowrap; }
  #scroller { width: 200px; overflow-x: auto; }
  #scroller table { width: 2000px; }
</style></head><body>
  <nav><a id="first" style="left: 10px">Leaderboards</a><a id="second" style="left: 40px">Models</a></nav>
  <div id="wide"></div>
  <p id="cut">A sentence much too long for its box</p>
  <div id="scroller"><table><tr><td>a wide table inside its own scroll box</td></tr></table></div>
</body></html>"""

CLEAN_PAGE = """<!doctype html><html><head><style>
  body { margin: 0; font: 16px sans-serif; }
  #scroller { width: 200px; overflow-x: auto; }
  #scroller table { width: 2000px; }
  .fits { overflow: hidden; width: 400px; }
</style></head><body>
  <header><nav><a href="#">Leaderboards</a> <a href="#">Models</a></nav></header>
  <form><label for="x">Name</label> <input id="x"> <button>Save</button></form>
  <p class="fits">Short</p>
  <div id="scroller"><table><tr><td>a wide table inside its own scroll box</td></tr></table></div>
</body></html>"""
