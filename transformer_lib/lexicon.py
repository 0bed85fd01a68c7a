"""The words of the generated English->French corpus (:mod:`transformer_lib.corpus`), written for this course.

Plain data, read by :mod:`transformer_lib.grammar`. Each table is a block of text, one entry per
line or per ``;``-separated item, so that a teacher can add a word without reading any code.

Nouns, by semantic class (the class decides which verbs and adjectives may take them)::

    english[/plural] french[/plural] gender      "_" stands for a space inside a word

A missing plural is made by the regular rule (English -s/-es/-ies; French -s, -x after -eau/-eu,
-aux for -al, nothing after -s/-x/-z). ``FR_H_ASPIRE`` lists the words before which French does not
elide (``le hibou``, ``le huit mai``).

Adjectives: ``english french_m[/f[/m_pl[/f_pl]]] position classes`` where position ``B`` puts the
adjective before the noun in French (beauty, age, goodness, size: ``la petite voiture``) and ``A``
after (``la voiture rouge``); classes say what the adjective may describe (P people and animals,
T things and places, F food).

Verbs: see the comment above each table.
"""

from __future__ import annotations

__all__ = ["ADJECTIVES", "CITIES", "COUNTRIES", "DITRANSITIVE", "FR_H_ASPIRE", "INTRANSITIVE", "IRREGULAR",
           "MOTION", "NAMES", "NOUNS", "PLACE_PREPS", "TRANSITIVE", "WEEKDAYS", "WHEN"]

NOUNS = {
    # people (P)
    "P": """man/men homme m; woman/women femme f; boy garçon m; girl fille f; child/children enfant m;
        friend ami m; teacher professeur m; doctor médecin m; student étudiant m; neighbor voisin m;
        brother frère m; sister sœur f; father père m; mother mère f; son fils/fils m; uncle oncle m;
        aunt tante f; cousin cousin m; baby bébé m; king roi m; queen reine f; farmer fermier m;
        baker boulanger m; driver chauffeur m; actor acteur m; singer chanteur m; writer écrivain m;
        lawyer avocat m; nurse infirmière f; waiter serveur m; soldier soldat m; artist artiste m;
        grandfather grand-père/grands-pères m; grandmother grand-mère/grands-mères f; husband mari m;
        guest invité m; tourist touriste m; pupil élève m; engineer ingénieur m; painter peintre m;
        cook cuisinier m; dancer danseuse f; policeman/policemen policier m; actress actrice f""",
    # animals (A)
    "A": """dog chien m; cat chat m; horse cheval/chevaux m; bird oiseau m; cow vache f; mouse/mice souris f;
        rabbit lapin m; duck canard m; sheep/sheep mouton m; pig cochon m; hen poule f; fox renard m;
        wolf/wolves loup m; bear ours m; lion lion m; tiger tigre m; elephant éléphant m; monkey singe m;
        snake serpent m; frog grenouille f; goat chèvre f; donkey âne m; owl hibou/hiboux m; bee abeille f;
        spider araignée f; butterfly papillon m; turtle tortue f; squirrel écureuil m; whale baleine f;
        dolphin dauphin m; deer/deer cerf m; camel chameau m; giraffe girafe f; zebra zèbre m; ant fourmi f""",
    # food that is counted (F)
    "F": """apple pomme f; orange orange f; banana banane f; cake gâteau m; sandwich sandwich m; egg œuf m;
        tomato/tomatoes tomate f; potato/potatoes pomme_de_terre/pommes_de_terre f; carrot carotte f;
        pear poire f; lemon citron m; strawberry fraise f; cookie biscuit m; pie tarte f; sausage saucisse f;
        onion oignon m; peach pêche f; cherry cerise f; croissant croissant m; pizza pizza f;
        melon melon m; cucumber concombre m; pineapple ananas m; plum prune f""",
    # food and drink that is not counted (M): "bread" -> "du pain"
    "M": """bread pain m; cheese fromage m; rice riz m; soup soupe f; meat viande f; butter beurre m;
        salt sel m; sugar sucre m; jam confiture f; chocolate chocolat m; salad salade f; honey miel m;
        flour farine f; oil huile f; water eau f; milk lait m; coffee café m; tea thé m; juice jus m;
        wine vin m; beer bière f; lemonade limonade f; chicken poulet m; fish poisson m""",
    # vehicles (V)
    "V": """car voiture f; bus/buses bus/bus m; train train m; bike vélo m; boat bateau m; plane avion m;
        truck camion m; taxi taxi m; motorcycle moto f; ship navire m; tractor tracteur m""",
    # things to read or write (R)
    "R": """book livre m; letter lettre f; newspaper journal m; magazine magazine m; story histoire f;
        poem poème m; map carte f; novel roman m; message message m; menu menu m; song chanson f;
        report rapport m; recipe recette f; list liste f; postcard carte_postale f""",
    # other things (O)
    "O": """table table f; chair chaise f; door porte f; window fenêtre f; key clé f; bag sac m; box/boxes boîte f;
        cup tasse f; glass/glasses verre m; plate assiette f; knife/knives couteau m; fork fourchette f;
        spoon cuillère f; bottle bouteille f; phone téléphone m; computer ordinateur m; lamp lampe f;
        bed lit m; clock horloge f; watch/watches montre f; pen stylo m; pencil crayon m; ball balle f;
        hat chapeau m; shirt chemise f; dress/dresses robe f; shoe chaussure f; coat manteau m;
        umbrella parapluie m; ticket billet m; photo photo f; flower fleur f; tree arbre m; stone pierre f;
        ring bague f; gift cadeau m; toy jouet m; wallet portefeuille m; mirror miroir m;
        blanket couverture f; pillow oreiller m; candle bougie f; basket panier m; bucket seau m;
        guitar guitare f; piano piano m; radio radio f; television télévision f; sofa canapé m;
        carpet tapis m; jacket veste f; skirt jupe f; sock chaussette f; glove gant m; scarf/scarves écharpe f;
        belt ceinture f; towel serviette f; soap savon m; brush/brushes brosse f; ladder échelle f;
        rope corde f; hammer marteau m; wheel roue f; coin pièce f; envelope enveloppe f; stamp timbre m;
        notebook cahier m; suitcase valise f; painting tableau m; bowl bol m; kite cerf-volant/cerfs-volants m""",
    # places (L)
    "L": """house maison f; school école f; park parc m; station gare f; museum musée m; library bibliothèque f;
        hospital hôpital m; church/churches église f; market marché m; store magasin m; bakery boulangerie f;
        restaurant restaurant m; hotel hôtel m; bank banque f; beach/beaches plage f; garden jardin m;
        kitchen cuisine f; office bureau m; airport aéroport m; cinema cinéma m; theater théâtre m;
        castle château m; farm ferme f; forest forêt f; river rivière f; lake lac m; mountain montagne f;
        village village m; city ville f; street rue f; bridge pont m; square place f; factory usine f;
        university université f; pharmacy pharmacie f; post_office poste f; zoo zoo m; stadium stade m;
        pool piscine f; harbor port m; island île f; bedroom chambre f;
        supermarket supermarché m; bookstore librairie f; gym gymnase m; palace palais m""",
}

ADJECTIVES = """red rouge A T; blue bleu/bleue/bleus/bleues A T; green vert A TF; black noir A TP; white blanc/blanche A TP;
    yellow jaune A TF; gray gris/grise A TP; brown marron/marron/marron/marron A TP; pink rose A T;
    purple violet/violette A T; orange orange/orange/orange/orange A T;
    small petit B TPF; big grand B TP; young jeune B P; old vieux/vieille/vieux/vieilles B TP;
    new nouveau/nouvelle/nouveaux/nouvelles B T; beautiful beau/belle/beaux/belles B TP; pretty joli B TP;
    good bon/bonne B TPF; bad mauvais/mauvaise/mauvais/mauvaises B TF; long long/longue B T;
    huge énorme A TP; short court A T; hot chaud A F; cold froid A TF; heavy lourd A T;
    light léger/légère A T; empty vide A T; full plein A T; clean propre A T; dirty sale A TP;
    expensive cher/chère A TF; happy heureux/heureuse A P; sad triste A P; tired fatigué A P;
    sick malade A P; rich riche A P; poor pauvre A P; strong fort A P; weak faible A P; fast rapide A TP;
    slow lent A TP; quiet calme A TP; noisy bruyant A TP; famous célèbre A TP; strange étrange A TP;
    funny drôle A P; kind gentil/gentille A P; angry fâché A P; busy occupé A P; lazy paresseux/paresseuse A P;
    brave courageux/courageuse A P; polite poli A P; smart intelligent A P; curious curieux/curieuse A P;
    sweet sucré A F; salty salé A F; fresh frais/fraîche/frais/fraîches A F; ripe mûr A F; round rond A TF;
    soft doux/douce/doux/douces A TF; hard dur A TF; wide large A T; narrow étroit A T; dark sombre A T;
    modern moderne A T; ancient ancien/ancienne A T; broken cassé A T; open ouvert A T; closed fermé A T;
    wet mouillé A TP; dry sec/sèche A TF; proud fier/fière A P; shy timide A P; nervous nerveux/nerveuse A P;
    delicious délicieux/délicieuse A F; dangerous dangereux/dangereuse A TP; quick vif/vive A P"""

# Transitive verbs: english 3rd-singular past french objects.  Objects: the noun classes the verb takes.
# A trailing particle of the English verb is written with "_" ("look_for"): it stays after the verb.
TRANSITIVE = """see sees saw voir PAFVROL; have has had avoir PAFVRO; watch watches watched regarder PAVO; eat eats ate manger FM;
    drink drinks drank boire M; buy buys bought acheter FMVRO; sell sells sold vendre VRO;
    want wants wanted vouloir FMVRO; take takes took prendre VRO; read reads read lire R;
    write writes wrote écrire R; open opens opened ouvrir O; close closes closed fermer O;
    find finds found trouver PAVRO; lose loses lost perdre RO; look_for looks_for looked_for chercher PAVRO;
    love loves loved aimer PAFMO; hate hates hated détester PAFM; know knows knew connaître PL;
    help helps helped aider P; call calls called appeler PA; wait_for waits_for waited_for attendre PV;
    hear hears heard entendre PA; meet meets met rencontrer P; visit visits visited visiter L;
    clean cleans cleaned nettoyer VOL; carry carries carried porter RO; bring brings brought apporter FRO;
    paint paints painted peindre OL; draw draws drew dessiner PAVOL; prepare prepares prepared préparer FM;
    cut cuts cut couper FMO; wash washes washed laver VO; repair repairs repaired réparer VO;
    break breaks broke casser O; follow follows followed suivre PAV; choose chooses chose choisir FVRO;
    forget forgets forgot oublier PRO; receive receives received recevoir RO; push pushes pushed pousser VO;
    pull pulls pulled tirer VO; feed feeds fed nourrir A; keep keeps kept garder AFRO; hide hides hid cacher RO;
    throw throws threw lancer O; catch catches caught attraper AO; count counts counted compter AO;
    touch touches touched toucher AO; understand understands understood comprendre PR;
    learn learns learned apprendre R; drive drives drove conduire V; fill fills filled remplir O;
    sing sings sang chanter R; describe describes described décrire PAVROL; build builds built construire OL;
    leave leaves left quitter PL; invite invites invited inviter P; photograph photographs photographed photographier PAVOL"""

# Verbs without an object: english 3rd-singular past french  (the sentence may add "in the garden").
INTRANSITIVE = """sleep sleeps slept dormir; run runs ran courir; work works worked travailler;
    dance dances danced danser; swim swims swam nager; walk walks walked marcher; laugh laughs laughed rire;
    cry cries cried pleurer; play plays played jouer; travel travels traveled voyager; cook cooks cooked cuisiner;
    smile smiles smiled sourire; read reads read lire; eat eats ate manger; wait waits waited attendre;
    study studies studied étudier; rest rests rested se_reposer; sing sings sang chanter; write writes wrote écrire"""

# Verbs of motion, conjugated with "être": english 3rd-singular past french preposition
# (to: "à" + place -> "au parc"; from: "de" + place -> "du parc"; into: "dans"; in: none in English,
# "dans" in French: "she enters the house" -> "elle entre dans la maison").
MOTION = """go goes went aller to; come comes came venir from; arrive arrives arrived arriver at;
    leave leaves left partir from; return returns returned retourner to; enter enters entered entrer in;
    stay stays stayed rester at; fall falls fell tomber into; go_back goes_back went_back rentrer to"""

# Verbs with an object and a person it goes to: "I give the book to the boy" -> "je donne le livre au garçon".
DITRANSITIVE = """give gives gave donner FRO; show shows showed montrer PAVRO; send sends sent envoyer RO;
    lend lends lent prêter VRO; sell sells sold vendre VRO; bring brings brought apporter FRO;
    read reads read lire R; offer offers offered offrir FRO"""

# Irregular French verbs: present (je tu il nous vous ils) | past participle | future stem.
# Regular -er, -ir (finir) and -re (vendre) verbs, with their spelling changes, are conjugated by rule.
IRREGULAR = """être: suis es est sommes êtes sont | été | ser
    avoir: ai as a avons avez ont | eu | aur
    aller: vais vas va allons allez vont | allé | ir
    venir: viens viens vient venons venez viennent | venu | viendr
    voir: vois vois voit voyons voyez voient | vu | verr
    boire: bois bois boit buvons buvez boivent | bu | boir
    vouloir: veux veux veut voulons voulez veulent | voulu | voudr
    pouvoir: peux peux peut pouvons pouvez peuvent | pu | pourr
    devoir: dois dois doit devons devez doivent | dû | devr
    prendre: prends prends prend prenons prenez prennent | pris | prendr
    comprendre: comprends comprends comprend comprenons comprenez comprennent | compris | comprendr
    apprendre: apprends apprends apprend apprenons apprenez apprennent | appris | apprendr
    lire: lis lis lit lisons lisez lisent | lu | lir
    écrire: écris écris écrit écrivons écrivez écrivent | écrit | écrir
    décrire: décris décris décrit décrivons décrivez décrivent | décrit | décrir
    ouvrir: ouvre ouvres ouvre ouvrons ouvrez ouvrent | ouvert | ouvrir
    offrir: offre offres offre offrons offrez offrent | offert | offrir
    connaître: connais connais connaît connaissons connaissez connaissent | connu | connaîtr
    peindre: peins peins peint peignons peignez peignent | peint | peindr
    suivre: suis suis suit suivons suivez suivent | suivi | suivr
    recevoir: reçois reçois reçoit recevons recevez reçoivent | reçu | recevr
    envoyer: envoie envoies envoie envoyons envoyez envoient | envoyé | enverr
    nettoyer: nettoie nettoies nettoie nettoyons nettoyez nettoient | nettoyé | nettoier
    conduire: conduis conduis conduit conduisons conduisez conduisent | conduit | conduir
    construire: construis construis construit construisons construisez construisent | construit | construir
    dormir: dors dors dort dormons dormez dorment | dormi | dormir
    courir: cours cours court courons courez courent | couru | courr
    partir: pars pars part partons partez partent | parti | partir
    rire: ris ris rit rions riez rient | ri | rir
    sourire: souris souris sourit sourions souriez sourient | souri | sourir
    faire: fais fais fait faisons faites font | fait | fer"""

# People's and places' names: english french gender (places take "à": "in Paris" -> "à Paris").
NAMES = """Marie Marie f; Paul Paul m; Sophie Sophie f; Thomas Thomas m; Julie Julie f; Lucas Lucas m;
    Emma Emma f; Louis Louis m; Alice Alice f; Hugo Hugo m; Claire Claire f; Pierre Pierre m;
    Anne Anne f; Marc Marc m; Léa Léa f; Nicolas Nicolas m; Camille Camille f; Antoine Antoine m"""

CITIES = "Paris Paris; London Londres; Rome Rome; Berlin Berlin; Montreal Montréal; Brussels Bruxelles; Geneva Genève; Lyon Lyon"

# Where and when, for the ends of sentences.
PLACE_PREPS = [("in", "dans"), ("near", "près de"), ("in front of", "devant"), ("behind", "derrière"),
               ("next to", "à côté de"), ("at", "à")]
COUNTRIES = [("France", "en France"), ("Canada", "au Canada"), ("Japan", "au Japon"), ("Italy", "en Italie"),
             ("Spain", "en Espagne"), ("Portugal", "au Portugal"), ("Belgium", "en Belgique"),
             ("Germany", "en Allemagne"), ("Mexico", "au Mexique"), ("the United States", "aux États-Unis")]
WEEKDAYS = [("Monday", "lundi"), ("Tuesday", "mardi"), ("Wednesday", "mercredi"), ("Thursday", "jeudi"),
            ("Friday", "vendredi"), ("Saturday", "samedi"), ("Sunday", "dimanche")]
WHEN = {"past": [("yesterday", "hier"), ("last week", "la semaine dernière"), ("this morning", "ce matin")],
        "future": [("tomorrow", "demain"), ("next week", "la semaine prochaine"), ("tonight", "ce soir")],
        "present": [("every day", "tous les jours"), ("today", "aujourd'hui"), ("every morning", "tous les matins")]}


FR_H_ASPIRE = frozenset({"hibou", "hiboux", "huit", "onze", "haricot", "héros", "hache"})
