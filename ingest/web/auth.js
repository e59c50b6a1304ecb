// The read key: asked for once in a modal form, kept in sessionStorage only.

const STORAGE_KEY = 'smart-traffic-key';

let memoryKey = null; // when sessionStorage is unavailable (privacy mode, sandboxed frame)
let pending = null; // one prompt shared by every request that needs the key

export function getKey() {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? memoryKey;
  } catch {
    return memoryKey;
  }
}

function setKey(key) {
  memoryKey = key;
  try {
    sessionStorage.setItem(STORAGE_KEY, key);
  } catch {
    // memoryKey holds it for this page
  }
}

/**
 * Resolves once the user has entered a key. `error` (the server's words) is shown when a key
 * was sent and refused.
 */
export function askForKey(error) {
  const dialog = document.getElementById('key-dialog');
  const form = document.getElementById('key-prompt');
  const message = document.getElementById('key-error');
  if (error) {
    message.textContent = `The key was refused: ${error}`;
    message.hidden = false;
  }
  if (pending) return pending;
  if (!error) message.hidden = true;
  pending = new Promise((resolve) => {
    const input = form.elements.key;
    const onSubmit = (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) {
        message.textContent = 'Enter the read key.';
        message.hidden = false;
        input.focus();
        return;
      }
      form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('cancel', onCancel);
      setKey(key);
      input.value = '';
      message.hidden = true;
      form.hidden = true;
      if (dialog.open) dialog.close();
      pending = null;
      resolve(key);
    };
    // Nothing works without the key: Escape does not dismiss the prompt.
    const onCancel = (event) => event.preventDefault();
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', onCancel);
    form.hidden = false;
    if (!dialog.open) {
      try {
        dialog.showModal();
      } catch {
        dialog.setAttribute('open', '');
      }
    }
    input.focus();
  });
  return pending;
}
