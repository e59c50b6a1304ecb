// Requests to the public API: the key on every request, problem+json errors, and Server-Sent
// Events read over fetch() (EventSource cannot send an Authorization header).

import { askForKey, getKey } from './auth.js';

export class ApiError extends Error {
  constructor(status, title, detail, path) {
    super(detail ? `${title}: ${detail}` : title);
    this.name = 'ApiError';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.path = path;
  }
}

async function readProblem(response) {
  let title = response.statusText || `HTTP ${response.status}`;
  let detail = '';
  try {
    const text = await response.text();
    const type = response.headers.get('content-type') ?? '';
    if (type.includes('json')) {
      const problem = JSON.parse(text);
      title = problem.title || title;
      detail = problem.detail || '';
      if (Array.isArray(problem.errors) && problem.errors.length) {
        detail += ` (${problem.errors.map((e) => `${e.field}: ${e.message}`).join('; ')})`;
      }
    } else if (text) {
      detail = text.slice(0, 200);
    }
  } catch {
    // the body is optional
  }
  return { title, detail };
}

function abortError() {
  return new DOMException('aborted', 'AbortError');
}

function untilAborted(promise, signal) {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortError());
  return new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => reject(abortError()), { once: true });
    promise.then(resolve, reject);
  });
}

/**
 * fetch() with the key. A 401 asks for the key (again, with the server's reason, when one was
 * sent) and retries. Other failures throw an ApiError; an abort throws the AbortError.
 */
export async function apiFetch(path, { headers = {}, signal, accept = 'application/json' } = {}) {
  for (;;) {
    const key = getKey();
    const h = new Headers(headers);
    if (accept && !h.has('Accept')) h.set('Accept', accept);
    if (key) h.set('Authorization', `Bearer ${key}`);
    let response;
    try {
      response = await fetch(path, { headers: h, signal });
    } catch (error) {
      if (error?.name === 'AbortError') throw error;
      throw new ApiError(0, 'Connection failed', `${path} could not be reached`, path);
    }
    if (response.status === 401) {
      const problem = await readProblem(response);
      if (getKey() !== key) continue; // a new key was entered meanwhile
      await untilAborted(askForKey(key ? problem.detail || problem.title : null), signal);
      continue;
    }
    if (!response.ok) {
      const problem = await readProblem(response);
      throw new ApiError(response.status, problem.title, problem.detail, path);
    }
    return response;
  }
}

export async function getJson(path, options) {
  const response = await apiFetch(path, options);
  try {
    return await response.json();
  } catch {
    throw new ApiError(response.status, 'Unreadable answer', `${path} did not answer JSON`, path);
  }
}

/** Builds `path?query` from an object, leaving out null and undefined values. */
export function url(path, query = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v != null && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export const sensorPath = (id) => `/v1/sensors/${encodeURIComponent(id)}`;

/** The text/event-stream format, fed in arbitrary chunks. */
export class SseParser {
  constructor({ onEvent, onRetry, onComment }) {
    this.onEvent = onEvent;
    this.onRetry = onRetry ?? (() => {});
    this.onComment = onComment ?? (() => {});
    this.buffer = '';
    this.first = true;
    this.type = '';
    this.data = '';
    this.lastId = null;
    this.idBuffer = null;
  }

  feed(text) {
    if (this.first && text.length) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.first = false;
    }
    this.buffer += text;
    let start = 0;
    const buf = this.buffer;
    for (;;) {
      let i = start;
      while (i < buf.length && buf[i] !== '\n' && buf[i] !== '\r') i++;
      if (i >= buf.length) break;
      // A CR at the end of the chunk may be the first half of CRLF.
      if (buf[i] === '\r' && i + 1 >= buf.length) break;
      this.line(buf.slice(start, i));
      start = buf[i] === '\r' && buf[i + 1] === '\n' ? i + 2 : i + 1;
    }
    this.buffer = buf.slice(start);
  }

  /** The stream ended: a lone trailing CR still ends its line; an unterminated event is dropped. */
  end() {
    if (this.buffer.endsWith('\r')) this.line(this.buffer.slice(0, -1));
    this.buffer = '';
    this.type = '';
    this.data = '';
  }

  line(line) {
    if (line === '') {
      if (this.idBuffer !== null) this.lastId = this.idBuffer;
      if (this.data !== '') {
        const data = this.data.endsWith('\n') ? this.data.slice(0, -1) : this.data;
        this.onEvent({ type: this.type || 'message', data, id: this.lastId });
      }
      this.type = '';
      this.data = '';
      return;
    }
    if (line[0] === ':') {
      this.onComment(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data += `${value}\n`;
        break;
      case 'id':
        if (!value.includes('\0')) this.idBuffer = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.onRetry(Number(value));
        break;
      default:
        break;
    }
  }
}

/**
 * One live connection to `/v1/stream`, reconnected after the advised delay with
 * `Last-Event-ID`. `onStatus` gets 'connecting', 'live' or 'reconnecting'.
 */
export class EventStream {
  constructor(path, { onEvent, onStatus, onError }) {
    this.path = path;
    this.onEvent = onEvent;
    this.onStatus = onStatus ?? (() => {});
    this.onError = onError ?? (() => {});
    this.lastEventId = null;
    this.retryMs = 2000;
    this.failures = 0;
    this.stopped = true;
    this.controller = null;
    this.watchdog = null;
    this.reconnectNow = false;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.run().catch((error) => this.onError(error));
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
    clearTimeout(this.watchdog);
  }

  /** Ends the current connection; the loop reconnects (at once when `immediately`). */
  reconnect(immediately = true) {
    this.reconnectNow = immediately;
    this.controller?.abort();
  }

  // Heartbeats come every 15 s: three missed means the connection is dead though not closed.
  arm() {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.reconnect(true), 45_000);
  }

  async run() {
    let everLive = false;
    while (!this.stopped) {
      this.onStatus(everLive ? 'reconnecting' : 'connecting');
      const controller = new AbortController();
      this.controller = controller;
      let connected = false;
      try {
        const headers = { Accept: 'text/event-stream' };
        if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
        const response = await apiFetch(this.path, { headers, signal: controller.signal, accept: null });
        connected = true;
        everLive = true;
        this.arm();
        this.onStatus('live');
        const parser = new SseParser({
          onEvent: (event) => {
            if (event.id !== null) this.lastEventId = event.id || null; // an empty id resets it
            this.dispatch(event);
          },
          onRetry: (ms) => {
            this.retryMs = Math.min(Math.max(ms, 250), 60_000);
          },
        });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            this.arm();
            parser.feed(value);
          }
          parser.end();
        } finally {
          reader.releaseLock?.();
        }
      } catch (error) {
        if (error?.name !== 'AbortError' && !this.stopped) this.onError(error);
      } finally {
        clearTimeout(this.watchdog);
      }
      if (this.stopped) break;
      this.failures = connected ? 0 : this.failures + 1;
      this.onStatus('reconnecting');
      const wait = this.reconnectNow
        ? 0
        : Math.min(this.retryMs * 2 ** Math.min(Math.max(this.failures - 1, 0), 4), 30_000);
      this.reconnectNow = false;
      if (wait) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  dispatch(event) {
    let data = null;
    try {
      data = JSON.parse(event.data);
    } catch {
      return; // not ours to understand
    }
    if (event.type === 'dropped') {
      // The server ends the stream after this; resume from what we got.
      if (data?.last_event_id) this.lastEventId = data.last_event_id;
      this.reconnectNow = true;
    }
    this.onEvent(event.type, data, event.id);
  }
}
