"""Token rules live in the services, so every interface (page, command, shell) keeps them."""

import pytest

from flags.models import DetectorToken
from flags.services import DetectorError, detector_set_active, detector_token_create, detector_token_rotate
from reviewapp.audit.services import SYSTEM

pytestmark = pytest.mark.django_db


def test_a_revoked_token_cannot_be_rotated_twice(detector, detector_token):
    token = DetectorToken.objects.get(detector=detector)
    detector_token_rotate(actor=SYSTEM, token=token)
    with pytest.raises(DetectorError, match="already revoked"):
        detector_token_rotate(actor=SYSTEM, token=token)
    assert DetectorToken.objects.filter(detector=detector, revoked_at__isnull=True).count() == 1


def test_an_inactive_detector_gets_no_new_token(detector):
    detector_set_active(actor=SYSTEM, detector=detector, active=False)
    with pytest.raises(DetectorError, match="inactive"):
        detector_token_create(actor=SYSTEM, detector=detector)
    assert not DetectorToken.objects.exists()
