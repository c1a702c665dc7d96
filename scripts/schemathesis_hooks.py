"""Loaded by scripts/schemathesis.sh through SCHEMATHESIS_HOOKS.

Python 3.11 (Debian bookworm's 3.11.x included) can raise
`SystemError: AST constructor recursion depth mismatch` when code parses Python source while
the recursion limit has been moved (hypothesis raises it while generating). Hypothesis parses
the source of a filter's lambda only to print the strategy's repr, so on that error the lambda
is printed as `lambda` instead of failing the operation. What is generated and checked does not
change.
"""

from hypothesis.internal import lambda_sources

_describe = lambda_sources.lambda_description


def _lambda_description(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda"


lambda_sources.lambda_description = _lambda_description
