"""Survey comment text that reflects the customer's main driver and mood.

Comments are assembled from phrase banks so that a topic or sentiment method can
recover the driver (support, reliability, price, delivery) and the tone.
"""

from __future__ import annotations

import numpy as np

NEGATIVE = {
    "support": [
        "I have been waiting days for support to fix my issue",
        "my ticket is still not resolved",
        "support keeps closing my ticket without solving the problem",
        "nobody from customer service calls back",
        "I had to explain my problem to support three times",
        "the support team took over a week to answer",
    ],
    "reliability": [
        "the service keeps going down",
        "another outage this month, the connection is unreliable",
        "the network dropped several times this week",
        "constant interruptions and downtime",
        "the service was down for hours again",
    ],
    "price": [
        "the price went up again and it is too expensive",
        "my bill increased without any better service",
        "it is getting too expensive for what I get",
        "the new price is not worth it",
        "I am paying more every year, the charges are too high",
    ],
    "delivery": [
        "my order never arrived",
        "the delivery failed and nobody told me",
        "the order was wrong and late",
        "I am still waiting for my order to be delivered",
        "the shipment got lost",
    ],
    "general": [
        "nothing special, it could be better",
        "the service is just average",
        "not impressed overall",
    ],
}

POSITIVE = [
    "great service, very happy",
    "everything works well, thank you",
    "friendly staff and reliable service",
    "good value for money",
    "quick and helpful support",
    "I would recommend you to my friends",
]

NEUTRAL_OPENERS = ["it is ok but", "mostly fine, however", "decent, although", "fine overall, but"]
NEGATIVE_OPENERS = ["", "very disappointed:", "frankly,", "not happy,", "really annoyed,"]


def _bank(name: str) -> np.ndarray:
    return np.array(NEGATIVE[name], dtype=object)


def compose_comments(
    rng: np.random.Generator, nps: np.ndarray, driver: np.ndarray, driver_names: np.ndarray
) -> np.ndarray:
    """One comment per response: praise for promoters, the driver's complaint otherwise.

    ``driver`` indexes ``driver_names``; -1 means no dominant driver ("general").
    """
    n = len(nps)
    out = np.empty(n, dtype=object)
    promoters = nps >= 9
    out[promoters] = np.array(POSITIVE, dtype=object)[rng.integers(0, len(POSITIVE), promoters.sum())]
    names = np.where(driver >= 0, driver_names[np.maximum(driver, 0)], "general")
    for name in list(NEGATIVE):
        rows = ~promoters & (names == name)
        bank = _bank(name)
        out[rows] = bank[rng.integers(0, len(bank), rows.sum())]
    passives = (~promoters) & (nps >= 7)
    openers = np.where(
        passives,
        np.array(NEUTRAL_OPENERS, dtype=object)[rng.integers(0, len(NEUTRAL_OPENERS), n)],
        np.array(NEGATIVE_OPENERS, dtype=object)[rng.integers(0, len(NEGATIVE_OPENERS), n)],
    )
    lead = ~promoters & (openers != "")
    out[lead] = openers[lead] + " " + out[lead]
    return out
