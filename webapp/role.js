// The caller's role, asked of the master (GET /api/v1/whoami) after every token change,
// so that each view shows only the actions the token may do. Buttons that need more
// than `read` carry data-needs="operate" or "admin"; app.css hides them by the root's
// data-role. Until the master has answered (or if it cannot say), nothing is hidden:
// hiding is a courtesy, the master refuses what the role may not do anyway (403).

import { apiPath, request } from "./client.js";

const ROLES = ["read", "operate", "admin"];

/** Ask who the token is; marks the page with its role and shows it beside the token button. */
export async function learnRole(whoBox) {
  const root = document.documentElement;
  try {
    const answer = await request("GET", apiPath("whoami"));
    if (!ROLES.includes(answer.role)) throw new Error(`unknown role ${answer.role}`);
    root.dataset.role = answer.role;
    whoBox.textContent = `${answer.name} · ${answer.role}`;
    whoBox.title = `Token “${answer.name}”, role ${answer.role}`;
  } catch (err) {
    delete root.dataset.role;  // not known: show everything, the master decides
    whoBox.textContent = "";
    whoBox.removeAttribute("title");
  }
}

/** Mark `node` as an action that needs `role` ("operate" or "admin"); returns it. */
export function needs(role, node) {
  if (node) node.dataset.needs = role;
  return node;
}
