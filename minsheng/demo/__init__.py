"""The generated demo city 民声市: a fictional city, its organisation and a year of request history.

Everything here is pure Python and deterministic from a seed, so that `make demo`, the tests and the
benchmarks all see the same city without shipping any data file and without copying anyone's texts:

- :mod:`minsheng.demo.city` builds the areas (city → district → street → community → grid, with polygons that
  tile the city), named places, the category tree, the handling units, the users and the routing table;
- :mod:`minsheng.demo.texts` writes Chinese request texts, addresses and fake citizen identities;
- :mod:`minsheng.demo.history` turns them into ticket scripts walked through the closed loop.

The seeder (storage side) inserts what these modules return; nothing here touches a database.
"""
