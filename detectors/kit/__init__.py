"""The detector toolkit: the state handling every detector needs, written once.

- `keyed.KeyedState`: per-key state in least-recently-seen order, capped, expiring, with
  typed snapshot/restore (`keyed.to_plain` / `keyed.from_plain`).
- `ewma.Ewma` / `ewma.SeededEwma`: exponentially weighted mean and variance baselines.
- `interim.InterimDelta`: the growth of a long flow reported as cumulative interim records.
- `reraise.due` (`doubled` or `refreshed`): the re-raise policy: when the quantity has
  doubled, or once a minute (`refresh_field()`) while the attack goes on; `Unreported`: the
  final count of one that grew and stopped.
- `files.WatchedFiles` / `files.FileLoad`: rule and indicator files that reload themselves.
- `hits.HitTable` / `hits.hit_alert`: one alert per (rule or indicator, actor), updated in place.
- `events.part` / `number` / `text`: fields read so that a null or mistyped section never raises;
  `events.ended`: a record's last packet time (a long flow's interim records share its start).
"""
from detectors.kit.events import ended, number, part, text
from detectors.kit.ewma import Ewma, SeededEwma
from detectors.kit.files import FileLoad, WatchedFiles
from detectors.kit.hits import Hit, HitTable, hit_alert
from detectors.kit.interim import InterimDelta
from detectors.kit.keyed import KeyedState, drop_oldest, from_plain, to_plain
from detectors.kit.reraise import Unreported, doubled, due, refresh_field, refreshed

__all__ = ["Ewma", "SeededEwma", "FileLoad", "WatchedFiles", "Hit", "HitTable", "hit_alert",
           "InterimDelta", "KeyedState", "drop_oldest", "from_plain", "to_plain", "doubled",
           "due", "refresh_field", "refreshed", "Unreported",
           "ended", "number", "part", "text"]
