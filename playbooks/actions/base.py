"""What every action is: typed parameters, one `run`, and whether repeating it is safe."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from playbooks.settings import PlaybookSettings
from watchkeeper.assets import Inventory
from watchkeeper.networks import InternalNetworks
from watchkeeper.store import Store


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class ActionContext:
    store: Store
    settings: PlaybookSettings
    run: dict                     # the run's watchkeeper.run section (read-only here)
    run_id: str
    step_id: str
    target: str | None
    key: str                      # idempotency key: run × step × target
    now: float
    internal: InternalNetworks = field(default_factory=InternalNetworks)
    inventory: Inventory = field(default_factory=Inventory)

    @property
    def actor(self) -> str:
        return f"playbook:{self.run.get('playbook')}"


@dataclass
class ActionResult:
    # busy: the engine's own (another worker has the step in hand), never an action's
    outcome: Literal["ok", "failed", "waiting", "denied", "skipped", "busy"]
    output: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    retry: bool = True         # False: trying again cannot help (a refusal, a bad input)


class Action:
    name: ClassVar[str]
    Params: ClassVar[type[Params]] = Params
    # True: running it again with the same key has no further effect at the target (the
    # receiver dedupes on the key, the write has a deterministic id, nft adds an element
    # once), so a step interrupted by a crash is retried. False: it is not repeated;
    # its outcome is recorded as unknown and `on_failure` decides.
    idempotent: ClassVar[bool] = False
    # Each finished attempt of an action that acts on the world gets an audit record; reads
    # (enrich) and approvals (their decisions are audited) do not.
    audited: ClassVar[bool] = True

    def run(self, ctx: ActionContext, params: Any) -> ActionResult:
        raise NotImplementedError
