"""help(latentdb) reads as a manual: every public name, and every public method and
property of the public classes, has a docstring."""
import inspect

import latentdb


def test_every_public_name_has_a_docstring():
    missing = []
    for name in latentdb.__all__:
        obj = getattr(latentdb, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for m, v in vars(obj).items():
                if m.startswith("_"):
                    continue
                if callable(v) or isinstance(v, (property, classmethod, staticmethod)):
                    if not inspect.getdoc(getattr(obj, m)):
                        missing.append(f"{name}.{m}")
    assert not missing, f"no docstring: {missing}"
