"""What model calls cost: tokens and money, and the budgets that bound them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_usd + other.cost_usd,
        )


@dataclass(frozen=True)
class Budget:
    """What one task may spend; None means no bound."""

    tokens: int | None = None
    cost_usd: float | None = None

    def refusal(self, used: Usage, next_tokens: int = 0) -> str | None:
        """Why a call of about `next_tokens` tokens would exceed the budget, or None.

        Money cannot be known before a call, so the money bound stops the first call made
        once it is reached; the token bound stops the call that would cross it.
        """
        if self.tokens is not None and used.total_tokens + next_tokens > self.tokens:
            return (
                f"budget exceeded: {used.total_tokens} tokens used, about {next_tokens} "
                f"more needed, budget {self.tokens} tokens"
            )
        if self.cost_usd is not None and used.cost_usd >= self.cost_usd:
            return f"budget exceeded: ${used.cost_usd:.4f} spent, budget ${self.cost_usd:.4f}"
        return None
