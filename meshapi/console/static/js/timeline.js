// One line of the history timeline per event: what happened, in words.

function ms(value) {
  return typeof value === "number" ? ` in ${value} ms` : "";
}

const NAMES = { "@plan": "plan", "@synthesis": "synthesis", "@review": "review" };

/** [what, text] for one event of the task's log. */
export function describeEvent(e) {
  const sub = NAMES[e.subtask] || e.subtask;
  const where = e.iteration ? ` (iteration ${e.iteration})` : "";
  switch (e.kind) {
    case "transition":
      return [e.status, `${e.from ? `from ${e.from}` : "submitted"}${e.reason ? `: ${e.reason}` : ""}${e.score !== undefined ? `, score ${e.score}` : ""}`];
    case "step_start":
      return ["step started", `${e.agent}: ${sub}${where} on ${e.queue}${e.attempt > 1 ? `, attempt ${e.attempt}` : ""}`];
    case "step":
      return [`step ${e.step_status}`, `${e.agent}: ${sub}${where}${ms(e.latency_ms)}${e.model ? `, ${e.model}` : ""}${e.worker ? ` on ${e.worker}` : ""}${e.error ? ` — ${e.error}` : ""}`];
    case "plan":
      return ["plan", `iteration ${e.iteration}: ${(e.subtasks || []).map((t) => t.key).join(", ")}`];
    case "wave":
      return ["wave", `${where.trim()} wave ${e.wave ?? ""}`];
    case "verdict":
      return ["verdict", `score ${e.score}${where}: ${e.feedback || ""}`];
    case "recovery":
      return ["recovery", JSON.stringify(Object.fromEntries(Object.entries(e).filter(([k]) => !["id", "kind", "at", "status"].includes(k))))];
    case "webhook":
      return ["webhook", `attempt ${e.attempt ?? ""}: ${e.outcome ?? ""} ${e.status_code ?? ""}`];
    default:
      return [e.kind, ""];
  }
}
