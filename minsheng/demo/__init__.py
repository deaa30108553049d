"""The generated demo city 民声市: a fictional city, its organisation and a year of request history.

Everything here is deterministic from a seed, so that `make demo`, the tests and the benchmarks all see the
same city without copying anyone's texts. Name lists, phrase lists, templates, the category tree, the
departments and the knowledge base are the package's data files (``data/*.toml``, read by
:mod:`minsheng.demo.tables`); the modules hold the rules that draw from them:

- :mod:`minsheng.demo.city` builds the areas (city → district → street → community → grid, with polygons that
  tile the city), named places, the category tree, the handling units, the users and the routing table;
- :mod:`minsheng.demo.texts` writes Chinese request texts, with addresses (:mod:`minsheng.demo.addresses`)
  and fake citizen identities (:mod:`minsheng.demo.people`);
- :mod:`minsheng.demo.history` turns them into ticket scripts walked through the closed loop.

These generators touch no database; the seeder (:mod:`minsheng.demo.seed`) writes what they return.
"""
