"""What every action is: typed parameters, one `run`, and whether repeating it is safe."""
from __future__ import annotations

import logging
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
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
    # What people read in the incident timeline, in zh-CN (the default language); `message`
    # stays English for the audit log and the English console.
    message_zh: str = ""


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


def call(pool: Executor, action: Action, ctx: ActionContext, params: Params,
         timeout: float) -> ActionResult:
    """Run the action on the pool, bounded by `timeout`; a timeout or an exception (an
    action's bug) fails the step and never the worker."""
    future = pool.submit(action.run, ctx, params)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        return ActionResult("failed", {}, f"timed out after {timeout:g}s",
                            message_zh=f"{timeout:g} 秒内未完成，已超时")
    except Exception as exc:
        logging.getLogger(__name__).exception("action %s failed", action.name)
        return ActionResult("failed", {}, f"{type(exc).__name__}: {exc}",
                            message_zh=f"动作出错：{type(exc).__name__}: {exc}")
