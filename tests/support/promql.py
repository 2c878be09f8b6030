"""A PromQL parser for the expressions a dashboard holds: which series each reads, and by which labels.

`parse(text)` returns the expression's tree; `uses(tree)` the selectors (metric name and the
labels its matchers name) and the label lists of every grouping (`by`, `without`, `on`,
`ignoring`, `group_left`, `group_right`) with the selectors they group. It follows Prometheus'
grammar (operator precedence, modifiers, subqueries, `offset` and `@`) and refuses what it does
not know, an unknown function included, so a check built on it cannot be passed by an expression
it misread. Grafana's interval variables must be replaced before parsing (`grafana_expr`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

AGGREGATIONS = frozenset(
    {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values"}
)
FUNCTIONS = frozenset(
    {
        "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
        "count_over_time", "day_of_month", "day_of_week", "days_in_month", "delta", "deriv", "exp", "floor",
        "histogram_quantile", "hour", "idelta", "increase", "irate", "last_over_time", "ln", "log10", "log2",
        "max_over_time", "min_over_time", "minute", "month", "predict_linear", "present_over_time",
        "quantile_over_time", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt",
        "stddev_over_time", "stdvar_over_time", "sum_over_time", "time", "timestamp", "vector", "year",
    }
)  # fmt: skip
"""Every PromQL function that takes no label name as an argument (label_replace and label_join do)."""
KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"})
BINARY = (  # lowest precedence first
    ("or",),
    ("and", "unless"),
    ("==", "!=", "<=", "<", ">=", ">"),
    ("+", "-"),
    ("*", "/", "%", "atan2"),
    ("^",),
)
COMPARISONS = frozenset(BINARY[2])
SET_OPERATORS = frozenset({"or", "and", "unless"})
TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<duration>(?:\d+(?:ms|[smhdwy]))+)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0x[0-9a-fA-F]+|(?:[iI]nf|[nN]a[nN])\b)
    | (?P<ident>[a-zA-Z_][a-zA-Z0-9_:]*)
    | (?P<op>=~|!~|==|!=|<=|>=|[-+*/%^<>=(){}\[\],:@])
    )""",
    re.VERBOSE,
)


class PromQLError(ValueError):
    pass


@dataclass(frozen=True)
class Selector:
    metric: str | None
    labels: tuple[str, ...]
    """The label names its matchers test (`__name__` included when a matcher names it)."""


@dataclass
class Node:
    """One expression: the selectors under it and the groupings it applies to them."""

    selectors: list[Selector] = field(default_factory=list)
    groupings: list[tuple[tuple[str, ...], list[Selector]]] = field(default_factory=list)

    def absorb(self, *others: Node) -> Node:
        for other in others:
            self.selectors += other.selectors
            self.groupings += other.groupings
        return self


def tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) of each token; a comment (`#`) is refused like anything else not read here."""
    found, position = [], 0
    while text[position:].strip():
        match = TOKEN.match(text, position)
        if match is None:
            raise PromQLError(f"cannot read {text[position : position + 20]!r} in {text!r}")
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match[kind]))
        position = match.end()
    return found


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items = tokens(text)
        self.at = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.at + offset
        return self.items[index] if index < len(self.items) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        got_kind, got = self.peek()
        if (value is not None and got != value) or (kind is not None and got_kind != kind) or got_kind == "end":
            raise PromQLError(f"expected {value or kind} at {got!r} in {self.text!r}")
        self.at += 1
        return got

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] in ("op", "ident"):
            self.at += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.binary(0)
        if self.peek()[0] != "end":
            raise PromQLError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return node

    def binary(self, level: int) -> Node:
        if level == len(BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[1] in BINARY[level] and self.peek()[0] in ("op", "ident"):
            operator = self.take()
            if operator in COMPARISONS:
                self.accept("bool")
            matching = None
            if self.peek()[1] in ("on", "ignoring"):
                self.take()
                matching = self.label_list()
            grouped = None
            if self.peek()[1] in ("group_left", "group_right"):
                if operator in SET_OPERATORS:
                    raise PromQLError(f"{self.peek()[1]} with {operator} in {self.text!r}")
                self.take()
                grouped = self.label_list() if self.peek()[1] == "(" else ()
            right = self.binary(level + 1) if operator != "^" else self.binary(level)  # ^ is right-associative
            node = Node().absorb(left, right)
            for labels in (matching, grouped):
                if labels:
                    node.groupings.append((labels, left.selectors + right.selectors))
            left = node
            if operator == "^":
                break
        return left

    def unary(self) -> Node:
        if self.peek()[1] in ("-", "+") and self.peek()[0] == "op":
            self.take()
            return self.unary()
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        if self.accept("["):
            self.take(kind="duration")
            if self.accept(":") and self.peek()[0] == "duration":
                self.take()
            self.take("]")
        while self.peek()[1] in ("offset", "@"):
            if self.take() == "offset":
                self.accept("-")
                self.take(kind="duration")
            elif not self.accept("start") and not self.accept("end"):
                self.take(kind="number")
            else:
                self.take("(")
                self.take(")")
        return node

    def primary(self) -> Node:
        kind, value = self.peek()
        if kind in ("number", "duration", "string"):
            self.take()
            return Node()
        if value == "(" and kind == "op":
            self.take()
            inner = self.binary(0)
            self.take(")")
            return inner
        if value == "{" and kind == "op":
            return self.selector(None)
        if kind != "ident" or value in KEYWORDS:
            raise PromQLError(f"unexpected {value!r} in {self.text!r}")
        self.take()
        if value in AGGREGATIONS:
            return self.aggregation(value)
        if self.peek()[1] == "(":
            if value not in FUNCTIONS:
                raise PromQLError(f"unknown function {value}() in {self.text!r}")
            return self.call()
        return self.selector(value)

    def label_list(self) -> tuple[str, ...]:
        self.take("(")
        labels = []
        while not self.accept(")"):
            labels.append(self.take(kind="ident"))
            if not self.accept(","):
                self.take(")")
                break
        return tuple(labels)

    def arguments(self) -> list[Node]:
        self.take("(")
        found: list[Node] = []
        while not self.accept(")"):
            found.append(self.binary(0))
            if not self.accept(","):
                self.take(")")
                break
        return found

    def aggregation(self, name: str) -> Node:
        labels = None
        if self.peek()[1] in ("by", "without"):
            self.take()
            labels = self.label_list()
        arguments = self.arguments()
        if labels is None and self.peek()[1] in ("by", "without"):
            self.take()
            labels = self.label_list()
        if not arguments:
            raise PromQLError(f"{name}() without an argument in {self.text!r}")
        node = Node().absorb(*arguments)
        if labels:
            node.groupings.append((labels, arguments[-1].selectors))
        return node

    def call(self) -> Node:
        return Node().absorb(*self.arguments())

    def selector(self, metric: str | None) -> Node:
        labels: list[str] = []
        if self.accept("{"):
            while not self.accept("}"):
                labels.append(self.take(kind="ident"))
                if self.take() not in ("=", "!=", "=~", "!~"):
                    raise PromQLError(f"expected a matcher after {labels[-1]} in {self.text!r}")
                self.take(kind="string")
                if not self.accept(","):
                    self.take("}")
                    break
        if metric is None and not labels:
            raise PromQLError(f"an empty selector in {self.text!r}")
        return Node(selectors=[Selector(metric, tuple(labels))])


def parse(text: str) -> Node:
    return Parser(text).parse()


GRAFANA_INTERVALS = re.compile(
    r"\$(?:__rate_interval|__interval|__range)\b|\$\{(?:__rate_interval|__interval|__range)}"
)


def grafana_expr(text: str) -> str:
    """A Grafana target's expression with its interval variables set, as Grafana sends it."""
    return GRAFANA_INTERVALS.sub("5m", text)
