"""The method kinds, listed once: each kind's label (tables and legends) and role (first-order or
natural gradient), in the order tables and figures show them. What a kind reads and how it is
built: `natgrad.study.methods`. The schema's kind enums are checked against `KINDS` by the tests."""
FIRST_ORDER, NATURAL_GRADIENT = "first_order", "natural_gradient"

#: kind: (label, role), first-order methods first.
TABLE = {
    "msgd": ("MSGD", FIRST_ORDER),
    "adam": ("Adam", FIRST_ORDER),
    "ng_same_batch": ("KL, same minibatch", NATURAL_GRADIENT),
    "ng_different_batch": ("KL, different training minibatch", NATURAL_GRADIENT),
    "ng_unlabeled": ("KL, unlabeled", NATURAL_GRADIENT),
    "ng_batch_plus_unlabeled": ("KL, minibatch + unlabeled", NATURAL_GRADIENT),
    "covariance": ("covariance (TONGA)", NATURAL_GRADIENT),
    "kfac": ("K-FAC", NATURAL_GRADIENT),
}
KINDS = tuple(TABLE)
LABELS = {kind: label for kind, (label, _) in TABLE.items()}
ROLES = {kind: role for kind, (_, role) in TABLE.items()}


def of_role(role):
    """The kinds of `role` (`FIRST_ORDER` or `NATURAL_GRADIENT`), in `KINDS`' order."""
    return tuple(kind for kind in KINDS if ROLES[kind] == role)
