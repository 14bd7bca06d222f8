// The API key lives in this tab's sessionStorage only: never a cookie, never a URL, gone when
// the tab closes.

const KEY = "mesh.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function signIn(key) {
  sessionStorage.setItem(KEY, key);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}
