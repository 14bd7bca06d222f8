// The public API, as any client calls it: /api/mesh, the key as a bearer header.

import { apiKey } from "./session.js";

export const API = "/api/mesh";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `the API answered ${status}`);
    this.status = status;
    this.body = body;
  }
}

function headers(extra) {
  return { Accept: "application/json", Authorization: `Bearer ${apiKey() || ""}`, ...extra };
}

/** One API call; answers {status, data, headers, pagination} or throws ApiError. */
export async function call(path, { method = "GET", body, extra = {}, signal, quiet = false } = {}) {
  const init = { method, headers: headers(extra), signal, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  if (response.status === 304) return { status: 304, data: null, headers: response.headers };
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    // `quiet`: the caller shows the refusal itself (sign-in does).
    if (response.status === 401 && !quiet) document.dispatchEvent(new CustomEvent("mesh:unauthorized", { detail: error }));
    throw error;
  }
  let pagination = null;
  const header = response.headers.get("X-Pagination");
  if (header) pagination = JSON.parse(header);
  return { status: response.status, data, headers: response.headers, pagination };
}

/** A query string from the values that are set. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** What went wrong, in a sentence, with the fields the API named. */
export function describe(error) {
  if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
  let text = `${error.status}: ${error.message}`;
  const fields = error.body && error.body.errors;
  if (fields && typeof fields === "object") text += " " + JSON.stringify(fields);
  return text;
}
