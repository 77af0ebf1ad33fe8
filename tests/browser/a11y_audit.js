// Evaluated in the page by the browser tests: every form control has a name a screen reader
// can say, and visible text meets WCAG AA contrast against the background it is drawn on
// (4.5:1; 3:1 for large text). Disabled controls are exempt, as WCAG exempts them.
// Returns the problems found, as text.
() => {
  const problems = [];
  for (const el of document.querySelectorAll("input, select, textarea, button")) {
    if (el.type === "hidden") continue;
    const named =
      el.labels?.length ||
      el.getAttribute("aria-label") ||
      el.getAttribute("aria-labelledby") ||
      (el.tagName === "BUTTON" && el.textContent.trim());
    if (!named) problems.push(`unlabelled ${el.tagName.toLowerCase()}#${el.id}`);
  }
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const channel = (v) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode;
    const el = text.parentElement;
    if (!text.textContent.trim() || !el.checkVisibility()) continue;
    if (el.closest(".visually-hidden, :disabled")) continue;
    const style = getComputedStyle(el);
    const fg = luminance(rgb(style.color));
    const bg = luminance(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = Number.parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`contrast ${ratio.toFixed(2)} for "${text.textContent.trim().slice(0, 30)}"`);
    }
  }
  return problems;
}
