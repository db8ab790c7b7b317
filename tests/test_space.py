import pytest
from ray import tune
from ray.tune.search.sample import Categorical, Float, Function, Integer

from spiketune.tuning.space import (
    build_search_space,
    count_grid,
    flatten,
    nest,
    tuned_keys,
)


def test_nest_dotted_keys():
    nested = nest({"optim.lr": 0.1, "loss.regularisers.topology.weight": 0.5})
    assert nested == {
        "optim": {"lr": 0.1},
        "loss": {"regularisers": {"topology": {"weight": 0.5}}},
    }


def test_flatten_inverts_nest():
    bindings = {"optim.lr": 0.1, "model.hidden": [32, 16], "data.name": "digits"}
    assert flatten(nest(bindings)) == bindings


@pytest.mark.parametrize(
    ("spec", "domain_type", "bounds"),
    [
        ({"uniform": [0.1, 0.5]}, Float, (0.1, 0.5)),
        ({"loguniform": [1e-4, 1e-2]}, Float, (1e-4, 1e-2)),
        ({"quniform": [0.0, 1.0, 0.25]}, Float, (0.0, 1.0)),
        ({"randint": [2, 9]}, Integer, (2, 9)),
        ({"qrandint": [10, 50, 10]}, Integer, (10, 50)),
        ({"lograndint": [8, 256]}, Integer, (8, 256)),
    ],
)
def test_range_specs_become_domains(spec, domain_type, bounds):
    space = build_search_space({"optim.lr": spec})
    domain = space["optim"]["lr"]
    assert isinstance(domain, domain_type)
    assert (domain.lower, domain.upper) == bounds


def test_choice_and_grid_specs():
    space = build_search_space(
        {"model.tau": {"choice": [0.01, 0.02]}, "model.hidden": {"grid": [[8], [16]]}}
    )
    assert isinstance(space["model"]["tau"], Categorical)
    assert space["model"]["hidden"] == {"grid_search": [[8], [16]]}


def test_yaml_specs_match_python_domains():
    from_yaml = build_search_space(
        {"optim.lr": {"loguniform": [1e-4, 1e-2]}, "model.tau": {"choice": [1, 2]}}
    )
    from_python = build_search_space(
        {"optim.lr": tune.loguniform(1e-4, 1e-2), "model.tau": tune.choice([1, 2])}
    )
    for key in ("optim.lr", "model.tau"):
        yaml_domain = flatten(from_yaml)[key]
        python_domain = flatten(from_python)[key]
        assert type(yaml_domain) is type(python_domain)
        assert yaml_domain.domain_str == python_domain.domain_str


@pytest.mark.parametrize(
    ("spec", "draws_below", "q"),
    [({"randint": [3, 7]}, 7, 1), ({"qrandint": [10, 40, 10]}, 41, 10)],
)
def test_integer_samples_stay_in_bounds(spec, draws_below, q):
    domain = build_search_space({"model.population": spec})["model"]["population"]
    draws = domain.sample(size=400, random_state=0)
    assert min(draws) >= domain.lower
    assert max(draws) < draws_below
    assert all(d % q == 0 for d in draws)


def test_quniform_samples_on_grid():
    domain = build_search_space({"optim.lr": {"quniform": [0.0, 1.0, 0.25]}})["optim"][
        "lr"
    ]
    draws = domain.sample(size=200, random_state=1)
    assert set(round(d / 0.25, 9) for d in draws) <= {0.0, 1.0, 2.0, 3.0, 4.0}


def test_count_grid_is_product():
    space = build_search_space(
        {
            "model.hidden": {"grid": [[8], [16], [32]]},
            "optim.name": {"grid": ["adam", "sgd"]},
            "optim.lr": {"loguniform": [1e-3, 1e-2]},
        }
    )
    # Three hidden sizes times two optimizers.
    assert count_grid(space) == 6


def test_tuned_keys_skip_fixed_values():
    space = build_search_space(
        {"optim.lr": {"uniform": [0.1, 0.2]}, "optim.name": "adam"}
    )
    assert tuned_keys(space) == ["optim.lr"]


@pytest.mark.parametrize(
    ("bindings", "match"),
    [
        ({"optimizer.lr": 0.1}, "optimizer: unknown namespace"),
        ({"optim.lr": {"loguniform": [1e-2, 1e-4]}}, "optim.lr: loguniform range"),
        ({"optim.lr": {"uniform": [1.0, 1.0]}}, "optim.lr: uniform range"),
        ({"optim.lr": {"log_uniform": [1e-4, 1e-2]}}, "optim.lr: unknown spec kind"),
        ({"optim.lr": {"choice": []}}, "optim.lr: choice needs a non-empty list"),
        ({"optim.lr": {"loguniform": [0.0, 1.0]}}, "lower bound > 0"),
        ({"model.hidden": {"randint": [1.5, 4]}}, "model.hidden: randint bounds"),
        ({"optim.lr": {"uniform": [1.0]}}, "optim.lr: uniform needs a list of 2"),
        ({"optim.lr": tune.uniform(0.5, 0.1)}, "optim.lr: range"),
        (
            {
                "data.dt": {
                    "sample_from": {"scale_of": "model.tau", "uniform": [0.1, 0.5]}
                }
            },
            "bind model.tau",
        ),
    ],
)
def test_bad_bindings_name_the_key(bindings, match):
    with pytest.raises(ValueError, match=match):
        build_search_space(bindings)


def test_conditional_value_scales_reference():
    space = build_search_space(
        {
            "model.tau": 0.02,
            "data.dt": {
                "sample_from": {"scale_of": "model.tau", "uniform": [0.1, 0.5]}
            },
        }
    )
    domain = space["data"]["dt"]
    assert isinstance(domain, Function)

    class Spec:
        config = {"model": {"tau": 0.02}}

    draws = [domain.func(Spec()) for _ in range(100)]
    # dt = tau * U(0.1, 0.5) lies in [0.002, 0.01].
    assert min(draws) >= 0.02 * 0.1
    assert max(draws) <= 0.02 * 0.5
