"""The ordered layer rule table: which component of the journey emitted a span.

Rules are data (``default_rules.yaml`` beside this module, plus an optional user file given with
``--rules``) compiled once into small predicate tuples, because classification runs once per span and
a million spans per run is the target. The format is documented in docs/analyzer.md ("Rules file"):

.. code-block:: yaml

    sidecar:                      # optional: replaces the built-in DB sidecar lists
      containers: [db]            # k8s.container.name values of the DB sidecar
      services: [shop-db]         # service.name values of the DB sidecar
    rules:                        # tried before the built-in rules; first match wins
      - layer: ingress            # required: one of the LAYERS
        description: Kong         # optional, shown in error messages
        service: [kong]           # service.name is one of these
        kind: [server, client]    # span kind is one of these
        name: [kong.access]       # span name is one of these
        name_regex: "^kong\\\\."   # re.search on the span name
        attributes:               # span attribute, else resource attribute:
          component: proxy        #   equals (compared as text)
          http.route: "*"         #   is present
          node_id: {regex: "^x"}  #   matches (re.search)
          k8s.container.name: [a, b]  # is one of these
        attribute_prefix: kong.   # some span attribute key starts with this

Every condition given must hold (AND); write several rules for OR.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tracekit import attributes as a
from tracekit.analyze.model import LAYERS, Span, SpanKind
from tracekit.errors import RulesError

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.yaml")

_KINDS = {k.name.lower(): k for k in SpanKind}
_RULE_KEYS = {
    "layer",
    "description",
    "service",
    "kind",
    "name",
    "name_regex",
    "attributes",
    "attribute_prefix",
}

#: A compiled attribute condition: (key, test). ``test`` gets the attribute value (never None).
AttrTest = tuple[str, Callable[[Any], bool]]


def _text(value: Any) -> str:
    """Compare attribute values as text: YAML ``true`` and an attribute ``True`` both read "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule. ``None`` fields are conditions not given."""

    layer: str
    description: str = ""
    services: frozenset[str] | None = None
    kinds: frozenset[SpanKind] | None = None
    names: frozenset[str] | None = None
    name_regex: re.Pattern[str] | None = None
    attrs: tuple[AttrTest, ...] = ()
    attribute_prefix: str | None = None

    def matches(self, span: Span) -> bool:
        if self.kinds is not None and span.kind not in self.kinds:
            return False
        if self.services is not None and span.service not in self.services:
            return False
        if self.names is not None and span.name not in self.names:
            return False
        if self.name_regex is not None and self.name_regex.search(span.name) is None:
            return False
        for key, test in self.attrs:
            value = span.attributes.get(key)
            if value is None:
                value = span.resource.get(key)
                if value is None:
                    return False
            if not test(value):
                return False
        if self.attribute_prefix is not None:
            prefix = self.attribute_prefix
            if not any(k.startswith(prefix) for k in span.attributes):
                return False
        return True


#: Classification results cached before the cache is cleared (bounds memory on odd inputs).
CACHE_SIZE = 50_000
#: Entries of the by-identity cache (:meth:`RuleTable.classify`). Each pins an attribute dict, and an
#: identity repeats only while the reader shares that dict (its own cache holds 8192), so no larger.
IDENTITY_CACHE_SIZE = 8192
#: A cache miss: a str of its own (no layer is named so), so a cache lookup stays ``str | None``.
_MISS = "<not cached>"


@dataclass(frozen=True, slots=True)
class RuleTable:
    """User rules, then the DB sidecar rule, then the built-in rules: first match wins.

    :meth:`classify` runs once per span, so results are cached. A rule looks only at the span's
    kind, name and service, at its resource attributes and at the span attribute keys in
    :attr:`span_keys`; so the answer is cached per *resource* (readers share one resource dict
    between the spans of a process in a batch), keyed by what the rules can see of the span:

    - the resource part is resolved once per resource dict (:meth:`_resource_cache`): resources
      that no rule can tell apart share one cache;
    - the span part is ``(kind, name, service, rule-attribute values)``, where the name counts only
      when some rule looks at names (otherwise high-cardinality names such as ``GET /items/42``
      would fill the cache) and the attribute values only when the span has one of the keys.

    In front of that sits a cache by the identity of the span's attribute and resource dicts
    (:meth:`classify`), so most spans of an OTLP file cost one small tuple and one lookup.
    """

    rules: tuple[Rule, ...]
    sidecar_containers: frozenset[str] = field(default_factory=frozenset)
    sidecar_services: frozenset[str] = field(default_factory=frozenset)
    span_keys: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    span_key_set: frozenset[str] = frozenset()
    #: Span names some rule lists (``name``); with ``any_name_regex`` every name matters.
    rule_names: frozenset[str] = frozenset()
    any_name_regex: bool = False
    #: ``span_keys`` split: keys some rule compares the value of, and keys every rule only wants
    #: present (``"*"``): the caches project the latter to True/False.
    value_keys: tuple[str, ...] = ()
    presence_keys: tuple[str, ...] = ()
    #: content projection of a resource -> that resource class's span cache.
    _by_content: dict[Any, dict[Any, str | None]] = field(default_factory=dict, compare=False, repr=False)
    #: id(resource dict) -> (the dict, its span cache); the dict is kept referenced so its id stays its own.
    _resources: dict[int, tuple[Any, dict[Any, str | None]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    #: (id(attributes), id(resource), kind, name or "", service) -> (attributes, resource, layer).
    _by_identity: dict[tuple[Any, ...], tuple[Any, Any, str | None]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def build(
        cls, rules: tuple[Rule, ...], containers: frozenset[str], services: frozenset[str]
    ) -> RuleTable:
        keys = sorted({key for rule in rules for key, _ in rule.attrs})
        prefixes = tuple(sorted({r.attribute_prefix for r in rules if r.attribute_prefix is not None}))
        names = frozenset(name for rule in rules if rule.names for name in rule.names)
        any_regex = any(rule.name_regex is not None for rule in rules)
        presence = tuple(
            k for k in keys if all(t is present for r in rules for key, t in r.attrs if key == k)
        )
        values = tuple(k for k in keys if k not in presence)
        return cls(
            rules,
            containers,
            services,
            tuple(keys),
            prefixes,
            frozenset(keys),
            names,
            any_regex,
            value_keys=values,
            presence_keys=presence,
        )

    def classify(self, span: Span) -> str | None:
        """Return the layer of the first matching rule, or None when no rule matches.

        First a cache by the *identity* of the span's attribute and resource dicts: readers share
        one dict between the spans whose attributes (or resource) are the same, so most spans are
        answered by one tuple and one lookup, without looking inside the dicts. The dicts are kept
        referenced by the entry, so their ids cannot be reused while it is there.
        """
        attrs = span.attributes
        res = span.resource
        name = span.name
        if not self.any_name_regex and name not in self.rule_names:
            name = ""
        ident = (id(attrs), id(res), span.kind, name, span.service)
        hit = self._by_identity.get(ident)
        if hit is not None and hit[0] is attrs and hit[1] is res:
            return hit[2]
        layer = self._classify_by_content(span)
        if len(self._by_identity) >= IDENTITY_CACHE_SIZE:
            self._by_identity.clear()
        self._by_identity[ident] = (attrs, res, layer)
        return layer

    def _classify_by_content(self, span: Span) -> str | None:
        """:meth:`classify` by what the rules can see of the span (see the class docstring)."""
        res = span.resource
        hit = self._resources.get(id(res))
        cache = hit[1] if hit is not None and hit[0] is res else self._resource_cache(res)
        attrs = span.attributes
        values: Any = None
        if attrs and not self.span_key_set.isdisjoint(attrs):
            values = (tuple(map(attrs.get, self.value_keys)), tuple(k in attrs for k in self.presence_keys))
        if self.prefixes and attrs:
            values = (values, tuple(any(k.startswith(p) for k in attrs) for p in self.prefixes))
        name = span.name
        if not self.any_name_regex and name not in self.rule_names:
            name = ""
        key = (span.kind, name, span.service, values)
        try:
            layer = cache.get(key, _MISS)
        except TypeError:  # an unhashable attribute value (a list): no caching
            return self.classify_uncached(span)
        if layer is _MISS:
            layer = self.classify_uncached(span)
            if len(cache) >= CACHE_SIZE:
                cache.clear()
            cache[key] = layer
        return layer

    def resource_key(self, res: dict[str, Any]) -> Any:
        """A key equal for resources that no rule can tell apart: their values of the rule keys.

        ``None`` when a value is unhashable (a list): such a resource shares its cache with no other.
        """
        content: Any = (tuple(map(res.get, self.value_keys)), tuple(k in res for k in self.presence_keys))
        try:
            hash(content)
        except TypeError:
            return None
        return content

    def _resource_cache(self, res: dict[str, Any]) -> dict[Any, str | None]:
        """The span cache shared by every resource with the same :meth:`resource_key`.

        A resource without a content key gets a cache of its own, held only beside the pinned dict
        in ``_resources``: keying it by ``id(res)`` would hand a freed dict's answers to a new one
        allocated at the same address.
        """
        content = self.resource_key(res)
        cache = None if content is None else self._by_content.get(content)
        if cache is None:
            cache = {}
            if content is not None:
                if len(self._by_content) >= CACHE_SIZE:
                    self._by_content.clear()
                self._by_content[content] = cache
        if len(self._resources) >= CACHE_SIZE:
            self._resources.clear()
        self._resources[id(res)] = (res, cache)
        return cache

    def classify_uncached(self, span: Span) -> str | None:
        for rule in self.rules:
            if rule.matches(span):
                return rule.layer
        return None


def load_rules(path: str | os.PathLike[str] | None = None) -> RuleTable:
    """Build the rule table: the user's file (if any) before the built-in rules.

    :raises RulesError: the user file is missing, not YAML, or has an invalid rule (one line naming
        the file, the rule number and the field).
    """
    builtin = _load_yaml(DEFAULT_RULES_PATH)
    user: dict[str, Any] = {}
    if path is not None:
        user = _load_yaml(Path(path))
    where_user = str(path)
    user_rules = [_compile(r, f"{where_user}: rule {i + 1}") for i, r in enumerate(_rule_list(user, path))]
    builtin_raw = _rule_list(builtin, DEFAULT_RULES_PATH)
    builtin_rules = [_compile(r, f"{DEFAULT_RULES_PATH}: rule {i + 1}") for i, r in enumerate(builtin_raw)]

    user_sidecar = user.get("sidecar")
    sidecar: dict[str, Any] = user_sidecar if isinstance(user_sidecar, dict) else builtin.get("sidecar", {})
    if "sidecar" in user and not isinstance(user["sidecar"], dict):
        raise RulesError(f"{where_user}: 'sidecar' must be a mapping with 'containers' and/or 'services'")
    unknown_sidecar = set(sidecar) - {"containers", "services"}
    if unknown_sidecar:
        # A typo ("container:") would otherwise replace the built-in lists with nothing, silently.
        raise RulesError(
            f"{where_user}: sidecar: unknown key(s) {sorted(map(str, unknown_sidecar))}; "
            "expected 'containers', 'services'"
        )
    containers = frozenset(_str_list(sidecar.get("containers", []), f"{path}: sidecar.containers"))
    services = frozenset(_str_list(sidecar.get("services", []), f"{path}: sidecar.services"))
    sidecar_rules = []
    if containers:
        test = _value_test(sorted(containers), "sidecar.containers")
        sidecar_rules.append(
            Rule("sidecar", "DB sidecar (container name)", attrs=((a.K8S_CONTAINER_NAME, test),))
        )
    if services:
        sidecar_rules.append(Rule("sidecar", "DB sidecar (service name)", services=services))
    # Built-in order: DB statements and tracekit's own markers first, then the sidecar, then the rest
    # (see default_rules.yaml). The split point is the first rule that is not db or tracekit.
    split = next(
        (i for i, r in enumerate(builtin_rules) if not r.description.startswith(("database", "tracekit"))),
        len(builtin_rules),
    )
    ordered = (*user_rules, *builtin_rules[:split], *sidecar_rules, *builtin_rules[split:])
    return RuleTable.build(ordered, containers, services)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot read rules file: {exc.__class__.__name__}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RulesError(f"{path}{line}: not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RulesError(f"{path}: a rules file is a mapping with a 'rules' list (got {type(data).__name__})")
    unknown = set(data) - {"rules", "sidecar"}
    if unknown:
        raise RulesError(f"{path}: unknown top-level key(s) {sorted(unknown)}; expected 'rules', 'sidecar'")
    return data


def _rule_list(data: dict[str, Any], path: object) -> list[Any]:
    rules = data.get("rules", [])
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise RulesError(f"{path}: 'rules' must be a list of rules")
    return rules


def _str_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str | int | float | bool):
        return [_text(value)]
    if isinstance(value, list) and all(isinstance(v, str | int | float | bool) for v in value):
        return [_text(v) for v in value]
    raise RulesError(f"{where}: expected a string or a list of strings")


def present(value: Any) -> bool:
    """The test of a ``"*"`` condition: the key is there, whatever its value. The rule table knows it
    by identity, so it caches such keys by presence, not by value (a statement text would otherwise
    make every span its own cache entry)."""
    return True


def _value_test(spec: Any, where: str) -> Callable[[Any], bool]:
    """Compile one attribute condition: "*", a scalar, a list of scalars or ``{regex: ...}``."""
    if spec == "*":
        return present
    if isinstance(spec, dict):
        if set(spec) != {"regex"} or not isinstance(spec["regex"], str):
            raise RulesError(f"{where}: a mapping condition must be {{regex: PATTERN}}")
        pattern = _regex(spec["regex"], where)
        return lambda v: pattern.search(_text(v)) is not None
    wanted = frozenset(_str_list(spec, where))
    if len(wanted) == 1:
        (only,) = wanted
        return lambda v: v == only or _text(v) == only
    return lambda v: _text(v) in wanted


def _regex(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise RulesError(f"{where}: invalid regular expression {pattern!r}: {exc}") from None


def _compile(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: a rule is a mapping (got {type(raw).__name__})")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RulesError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}")
    layer = raw.get("layer")
    if layer not in LAYERS:
        raise RulesError(f"{where}: field 'layer' must be one of {', '.join(LAYERS)} (got {layer!r})")
    description = str(raw.get("description", ""))
    services = names = None
    kinds = None
    if "service" in raw:
        services = frozenset(_str_list(raw["service"], f"{where}: field 'service'"))
    if "name" in raw:
        names = frozenset(_str_list(raw["name"], f"{where}: field 'name'"))
    if "kind" in raw:
        wanted = _str_list(raw["kind"], f"{where}: field 'kind'")
        bad = [k for k in wanted if k.lower() not in _KINDS]
        if bad:
            raise RulesError(f"{where}: field 'kind': unknown kind(s) {bad}; allowed: {sorted(_KINDS)}")
        kinds = frozenset(_KINDS[k.lower()] for k in wanted)
    name_regex = None
    if "name_regex" in raw:
        if not isinstance(raw["name_regex"], str):
            raise RulesError(f"{where}: field 'name_regex' must be a string")
        name_regex = _regex(raw["name_regex"], f"{where}: field 'name_regex'")
    attrs: list[AttrTest] = []
    spec = raw.get("attributes", {}) or {}
    if not isinstance(spec, dict):
        raise RulesError(f"{where}: field 'attributes' must be a mapping of attribute key to condition")
    for key, cond in spec.items():
        attrs.append((str(key), _value_test(cond, f"{where}: attributes.{key}")))
    prefix = raw.get("attribute_prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise RulesError(f"{where}: field 'attribute_prefix' must be a string")
    return Rule(layer, description, services, kinds, names, name_regex, tuple(attrs), prefix)
