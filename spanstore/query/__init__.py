"""The query language (SPEC.md "Query language"): parser, syntax tree, SQL compiler."""

from spanstore.query.ast import Query
from spanstore.query.compiler import Compiled, Target, compile_query
from spanstore.query.parser import QueryError, parse

__all__ = ["Compiled", "Query", "QueryError", "Target", "compile_query", "parse"]
