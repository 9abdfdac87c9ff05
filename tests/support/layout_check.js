// The layout checker (tests/support/layout.py): page.evaluate(LAYOUT_CHECK) → [{kind, where, detail}].
(() => {
  const problems = [];
  const where = (node) => {
    const el = node.nodeType === 1 ? node : node.parentElement;
    if (!el) return "?";
    const id = el.id ? `#${el.id}` : "";
    const cls = typeof el.className === "string" && el.className.trim() ? `.${el.className.trim().split(/\s+/).join(".")}` : "";
    return `${el.tagName.toLowerCase()}${id}${cls}`;
  };
  const shown = (el) => {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.display === "none" || style.visibility === "hidden" || Number(style.opacity) === 0) return false;
    }
    return el.getClientRects().length > 0;
  };

  const page = document.scrollingElement;
  if (page.scrollWidth > page.clientWidth + 1) {
    const unclipped = (el) => {
      for (let node = el.parentElement; node && node !== document.body; node = node.parentElement) {
        if (getComputedStyle(node).overflowX !== "visible") return false;
      }
      return true;
    };
    const widest = [...document.body.querySelectorAll("*")]
      .filter((el) => el.getBoundingClientRect().right > page.clientWidth + 1 && unclipped(el) && shown(el))
      .slice(-1)[0];
    problems.push({kind: "page-scroll", where: widest ? where(widest) : "body",
                   detail: `${page.scrollWidth} > ${page.clientWidth}`});
  }

  const scopes = document.querySelectorAll("header, nav, form, .site-header, .navbar");
  const texts = [];
  const seen = new Set();
  scopes.forEach((scope) => {
    const walker = document.createTreeWalker(scope, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (seen.has(node) || !node.textContent.trim() || !node.parentElement || !shown(node.parentElement)) continue;
      if (["SCRIPT", "STYLE", "OPTION", "TEXTAREA"].includes(node.parentElement.tagName)) continue;
      seen.add(node);
      const range = document.createRange();
      range.selectNodeContents(node);
      [...range.getClientRects()].filter((r) => r.width > 1 && r.height > 1).forEach((rect) => texts.push({node, rect}));
    }
  });
  const hits = new Set();
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      const a = texts[i], b = texts[j];
      if (a.node === b.node) continue;
      const dx = Math.min(a.rect.right, b.rect.right) - Math.max(a.rect.left, b.rect.left);
      const dy = Math.min(a.rect.bottom, b.rect.bottom) - Math.max(a.rect.top, b.rect.top);
      if (dx > 2 && dy > 2) {
        const key = `${where(a.node)} × ${where(b.node)}`;
        if (hits.has(key)) continue;
        hits.add(key);
        problems.push({kind: "overlap", where: key,
                       detail: `${JSON.stringify(a.node.textContent.trim().slice(0, 30))} × ${JSON.stringify(b.node.textContent.trim().slice(0, 30))}`});
      }
    }
  }

  document.body.querySelectorAll("*").forEach((el) => {
    const style = getComputedStyle(el);
    if (!["hidden", "clip"].includes(style.overflowX) || !el.textContent.trim() || !shown(el)) return;
    if (el.scrollWidth > el.clientWidth + 1) {
      problems.push({kind: "cut-off", where: where(el),
                     detail: `${el.scrollWidth} > ${el.clientWidth}: ${JSON.stringify(el.textContent.trim().slice(0, 40))}`});
    }
  });
  return problems;
})
