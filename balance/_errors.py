"""Former home of the error helpers; kept so older imports work. Use ``balance.errors``."""

from balance.errors import (  # noqa: F401
    InvalidArgumentError,
    InvalidDataError,
    InvalidTableError,
    RebalanceError,
    invalid,
    invalid_choice,
    invalid_data,
    short_repr,
)
