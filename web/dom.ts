// Building the page: elements from data (text only, never HTML, so nothing from a CSV can
// become markup) and the few formats it shows.

import { formatBytes } from '../src/byte-size.js';

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined>;

/** An element with attributes (true: present; false or undefined: left out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export const byId = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

/**
 * A URL as text with a line-break opportunity after each "/", "?", "&" and "=" (and before a
 * "."), so a long URL wraps between its parts rather than mid-word.
 */
export function breakableUrl(url: string): DocumentFragment {
  const out = document.createDocumentFragment();
  for (const part of url.split(/(?<=[/?&=])|(?=\.)/)) {
    if (out.childNodes.length) out.append(document.createElement('wbr'));
    out.append(part);
  }
  return out;
}

/** "1.2 MB → 340 kB, saved 72%" (or "grew 5%" when the output is bigger). */
export function bytesText(bytesIn: number, bytesOut: number): string {
  const sizes = `${formatBytes(bytesIn)} → ${formatBytes(bytesOut)}`;
  if (bytesIn === 0) return sizes;
  const change = Math.round((1 - bytesOut / bytesIn) * 100);
  return `${sizes}, ${change >= 0 ? `saved ${change}%` : `grew ${-change}%`}`;
}

export const when = (iso: string): string => new Date(iso).toLocaleString();

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = window.setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      window.clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
