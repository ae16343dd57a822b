"""A clinic's front door, decided before any resource exists: which ports its own load balancer carries, and which
ports its own networks may reach the ORCA pod on directly. components/front_door.py renders it.

- loadbalancer: an internal LoadBalancer Service with the clinic's source ranges (its private IP), plus the FQDN
  through the shared ingress controller. Each load-balanced port is one rule on *every* node's IP configuration of
  AKS's single internal load balancer (300 at most, orca_platform/plan/walls.py).
- loadbalancer with pushThroughIngress: the same, but PUSH (9400) only through the FQDN's /ws route: one rule per
  clinic instead of two (the Service keeps the port for the Ingress; cloud-provider-azure's
  `service.beta.kubernetes.io/port_<port>_no_lb_rule` leaves it off the load balancer).
- ingress-only: a ClusterIP Service behind the FQDN only; the ingress controller enforces the clinic's allow-list
  (the F5 NGINX Policy), and the clinic's "private IP" is the ingress controller's.
"""

from __future__ import annotations

from dataclasses import dataclass

from orca_platform.conventions import GLSERVER_PORT, PUSH_PORT
from orca_platform.model.fields import FrontDoorMode
from orca_platform.model.settings import Settings
from orca_platform.model.tenants import Clinic


@dataclass(frozen=True)
class FrontDoorPlan:
    mode: FrontDoorMode
    push_through_ingress: bool = False

    @property
    def load_balancer(self) -> bool:
        return self.mode is FrontDoorMode.LOADBALANCER

    @property
    def lb_rule_ports(self) -> tuple[int, ...]:
        """Ports that are a load-balancing rule on every node (the walls count these)."""
        if not self.load_balancer:
            return ()
        return (GLSERVER_PORT,) if self.push_through_ingress else (GLSERVER_PORT, PUSH_PORT)

    @property
    def direct_ports(self) -> tuple[int, ...]:
        """Ports the clinic's own networks reach the pod on without the ingress controller (its NetworkPolicy)."""
        return self.lb_rule_ports

    @property
    def no_lb_rule_ports(self) -> tuple[int, ...]:
        """Service ports kept for the Ingress but left off the load balancer."""
        return (PUSH_PORT,) if self.load_balancer and self.push_through_ingress else ()

    @property
    def label(self) -> str:
        if self.load_balancer and self.push_through_ingress:
            return "loadbalancer, PUSH through the ingress"
        return self.mode.value


def front_door_for(clinic: Clinic, settings: Settings) -> FrontDoorPlan:
    mode = clinic.front_door or settings.front_door.mode
    return FrontDoorPlan(mode=mode, push_through_ingress=settings.front_door.push_through_ingress)


def new_clinic_front_door(settings: Settings) -> FrontDoorPlan:
    """What a clinic added without a pin gets: the one the headroom figures speak of."""
    return FrontDoorPlan(settings.front_door.mode, settings.front_door.push_through_ingress)


MODES = (
    FrontDoorPlan(FrontDoorMode.LOADBALANCER),
    FrontDoorPlan(FrontDoorMode.LOADBALANCER, push_through_ingress=True),
    FrontDoorPlan(FrontDoorMode.INGRESS_ONLY),
)
