"""Hardware-in-the-loop lab for AudioCodes 400HD DHCP provisioning.

The packages are layers; a module imports only from its own layer or below (the
import contracts in pyproject.toml, checked by ``make lint`` and
tests/test_import_contracts.py). Top to bottom: 1. cli, pytest_plugin, run;
2. labgrid | explore; 3. release; 4. runner; 5. report; 6. bench; 7. sim; 8. phone;
9. console | power; 10. services | dhcp; 11. rig; 12. resolution; 13. records, errors,
netns (``|``: siblings that must not import each other). framework.sim never imports
framework.resolution. Each package's docstring says what it owns and may import.
"""

__version__ = "0.1.0"
