// A small non-blocking banner for errors: one line per distinct message, each fading after a
// while. Never throws and never logs as an error.

const shown = new Map();

export function showError(error, context = '') {
  const box = document.getElementById('banner');
  if (!box) return;
  const title = error?.title ?? error?.name ?? 'Error';
  const detail = error?.detail ?? (error?.title ? '' : error?.message ?? String(error));
  const text = `${context ? `${context}: ` : ''}${title}${detail ? ` — ${detail}` : ''}`;
  let item = shown.get(text);
  if (!item) {
    item = document.createElement('p');
    item.className = 'banner-item';
    const message = document.createElement('span');
    message.textContent = text;
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'banner-close';
    close.textContent = '×';
    close.setAttribute('aria-label', 'Dismiss');
    close.addEventListener('click', () => dismiss(text));
    item.append(message, close);
    box.append(item);
    shown.set(text, item);
    // Keep the banner short: the oldest goes first.
    while (shown.size > 4) dismiss(shown.keys().next().value);
  }
  box.hidden = false;
  clearTimeout(item.timer);
  item.timer = setTimeout(() => dismiss(text), 15_000);
}

function dismiss(text) {
  const item = shown.get(text);
  if (!item) return;
  clearTimeout(item.timer);
  item.remove();
  shown.delete(text);
  const box = document.getElementById('banner');
  if (box && shown.size === 0) box.hidden = true;
}
