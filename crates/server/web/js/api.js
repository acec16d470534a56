// The API client: JSON in and out with the session cookie, and every error envelope turned
// into an ApiError that carries its stable code (SPEC §2) so the UI can show it.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "NETWORK", `the server did not answer (${err.message})`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401 && path !== "/auth/session") {
    // The session ended (expired, signed out elsewhere): the shell shows the sign-in form.
    window.dispatchEvent(new CustomEvent("draftsmith:unauthorized"));
  }
  if (!response.ok) {
    const e = data && data.error;
    if (e && e.code) throw new ApiError(response.status, e.code, e.message, e.details || {});
    throw new ApiError(response.status, `HTTP_${response.status}`, text.slice(0, 200) || response.statusText);
  }
  return data;
}

/** Raw text of a draft file (its bytes decoded as UTF-8). */
export async function fileText(appId, path) {
  const url = `/admin/apps/${appId}/draft/files/${path.split("/").map(encodeURIComponent).join("/")}`;
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) {
    let e = {};
    try {
      e = (await response.json()).error || {};
    } catch {
      e = {};
    }
    throw new ApiError(response.status, e.code || `HTTP_${response.status}`, e.message || response.statusText);
  }
  return response.text();
}

/** `/admin/apps/{id}/coding-agent/…` */
export const agent = (appId, rest) => `/admin/apps/${appId}/coding-agent/${rest}`;

export { TERMINAL_STATUSES as TERMINAL } from "./contract.js";

const TEXT_TYPES = { md: "text/markdown", markdown: "text/markdown", csv: "text/csv", json: "application/json" };

/** Uploads a file to attach to a prompt (its bytes as the body); the stored upload. */
export async function uploadFile(appId, file) {
  const ext = (file.name.split(".").pop() || "").toLowerCase();
  const type = file.type || TEXT_TYPES[ext] || "text/plain";
  const url = `/admin/apps/${appId}/uploads?name=${encodeURIComponent(file.name || "pasted")}`;
  let response;
  try {
    response = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "content-type": type }, body: file });
  } catch (err) {
    throw new ApiError(0, "NETWORK", `the server did not answer (${err.message})`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(response.status, e.code || `HTTP_${response.status}`, e.message || response.statusText, e.details || {});
  }
  return data;
}

/** Where an upload's bytes are (the uploader's thumbnails). */
export function uploadUrl(appId, uploadId) {
  return `/admin/apps/${appId}/uploads/${uploadId}`;
}
