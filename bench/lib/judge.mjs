// Judging targets: each goes into results.targets as { target, pass, detail }. A target whose
// scenario answered wrongly, or was not measured, fails.

export const pct = (v) => (v == null ? '-' : `${Math.round(v * 1000) / 10} %`);
export const errorsIn = (...rows) => rows.reduce((sum, r) => sum + (r?.errors ?? 0), 0);

export function judge({ results, verified }) {
  const t = (name, pass, detail) =>
    results.targets.push({ target: name, pass: Boolean(pass), detail });
  const missing = (...labels) => {
    const wrong = labels.filter((l) => !verified[l]);
    return wrong.length
      ? `not measured: wrong answers from ${wrong.join(', ')} (see correctness)`
      : null;
  };
  /** A target on scenarios that must have answered right: evaluate() -> [pass, detail]. */
  const target = (name, labels, evaluate) => {
    const why = missing(...labels);
    if (why) return t(name, false, why);
    const [pass, detail] = evaluate();
    t(name, pass, detail);
  };
  return { t, target };
}
