"""The table bench/pipeline.py prints: every mode's rate, and the raw anchors with each Kafka
mode as a ratio to the 2-client raw bulk rate."""
from __future__ import annotations

from bench.machine import machine_line


# -- report -----------------------------------------------------------------------------------
def report(result: dict) -> str:
    load = result.get("load", {})
    lines = [machine_line(result["machine"]),
             f"load average (1 min) at start {load.get('start', 0):.1f}, at end "
             f"{load.get('end', 0):.1f}: the machine is shared with 7 other engineers",
             f"workload: {result['events']:,} flow events ({result['scan_probes']:,} scan "
             f"probes), generated in {result['generate_s']:.1f} s (not timed)", ""]
    rows = [("mode", "events/s", "seconds", "publish", "detect", "index", "alerts")]

    def stage(run: dict | None) -> str:
        if not run:
            return "-"
        first = run.get("first_batch_s")
        extra = f" (1st batch {first:.1f})" if first is not None else ""
        return f"{run['seconds']:.1f} s{extra}"

    for key, label in (("embedded", "embedded end to end (memory + SQLite)"),
                       ("ceiling", "Kafka -> ES copy, no detection (ceiling)"),
                       ("ceiling_validated", "Kafka -> ES copy, validated, 1 write at a time"),
                       ("copy_processes", "Kafka -> ES copy, 2 indexer processes"),
                       ("full_sequential", "Kafka -> detect -> ES, sequential"),
                       ("full_concurrent", "Kafka -> detect -> ES, concurrent (threads)"),
                       ("full_processes", "Kafka -> detect -> ES, stages as processes")):
        r = result["modes"].get(key)
        if not r:
            continue
        pub = f"{r['publish_s']:.1f} s" + ("" if key == "embedded" else " (untimed)")
        alerts = f"{r.get('alerts_published', '?')} -> {r.get('alerts_stored', 0)}" \
            if "alerts_stored" in r else "-"
        if "stored_s" in r:     # processes: when the last event was stored / detected
            detect = "-" if r["detected_s"] == r["stored_s"] else \
                f"{r['detected_s']:.1f} s (committed {r['committed_s']:.0f})"
            columns = (detect, f"{r['stored_s']:.1f} s")
        else:
            columns = (stage(r.get("detect")), stage(r.get("index")))
        rows.append((label, f"{r['events_per_s']:,.0f}", f"{r['seconds']:.1f}", pub,
                     *columns, alerts))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for j, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += anchor_lines(result)
    if result.get("ratio") is not None:
        lines += ["", f"ratio full/ceiling = {result['ratio']:.2f} "
                      f"(target for later rounds >= 0.80)"]
    if result.get("ratio_sequential") is not None:
        lines.append(f"ratio full sequential/ceiling = {result['ratio_sequential']:.2f}")
    lines.append("events/s = N / timed seconds; embedded includes publishing; Kafka modes time "
                 "the consuming stages only (publish shown apart). 'alerts' = published -> stored.")
    if any("stored_s" in r for r in result["modes"].values()):
        lines.append("processes modes: the run ends when every event is stored and detection is "
                     "done (its processes idle, every detection group committed); "
                     "'detect'/'index' = seconds from the first stored event until each was "
                     "done.")
    return "\n".join(lines)


def anchor_lines(result: dict) -> list[str]:
    """The raw anchors, and every Kafka mode as a ratio to the 2-client raw bulk rate."""
    a = result.get("anchors")
    if not a:
        return []
    base = a["raw_bulk_2"]["events_per_s"]
    lines = ["", f"anchors (same {result['events']:,} documents, {a['bytes_per_doc']:.0f} B each):",
             f"  kafka-producer-perf    {a['kafka_producer']['records_per_s']:>9,.0f} msg/s",
             f"  kafka-consumer-perf    {a['kafka_consumer']['records_per_s']:>9,.0f} msg/s "
             f"(fetch only {a['kafka_consumer']['fetch_records_per_s']:,.0f})",
             f"  raw bulk, 1 client     {a['raw_bulk_1']['events_per_s']:>9,.0f} docs/s",
             f"  raw bulk, 2 clients    {base:>9,.0f} docs/s  (the base of the ratios below)"]
    goals = {"ceiling": 0.7, "ceiling_validated": 0.7, "copy_processes": 0.7,
             "full_concurrent": 0.5, "full_sequential": 0.5, "full_processes": 0.5}
    for key, r in result["modes"].items():
        if key in goals:
            ratio = r["events_per_s"] / base
            lines.append(f"  ours: {key:<16} {r['events_per_s']:>9,.0f} ev/s = {ratio:.2f}x "
                         f"raw bulk (goal >= {goals[key]})")
    return lines


